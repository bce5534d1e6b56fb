// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ICertificateRegistry} from "./interfaces/ICertificateRegistry.sol";
import {TrustRegistry} from "./TrustRegistry.sol";

/**
 * @title CertificateRegistry
 * @notice Anchors batch roots of certificates and keeps their status; deployed as one contract
 * with the {TrustRegistry} it extends, so that every write checks authority in its own storage.
 *
 * A batch record fits one storage slot, so anchoring costs the same whatever the batch size.
 * Status is two bit fields per batch (suspended, revoked), 256 certificates a word: a bulk
 * change of 256 certificates is one storage write.
 */
contract CertificateRegistry is TrustRegistry, ICertificateRegistry {
    /// @dev One slot: 160 + 40 + 32 + 16 + 8 bits.
    struct Batch {
        address key;
        uint40 anchoredAt;
        uint32 count;
        uint16 typeId;
        bool revoked;
    }

    mapping(bytes32 root => Batch) private _batches;
    mapping(bytes32 root => mapping(uint256 word => uint256 bits)) private _suspended;
    mapping(bytes32 root => mapping(uint256 word => uint256 bits)) private _revoked;

    constructor(address root) TrustRegistry(root) {}

    /// @inheritdoc ICertificateRegistry
    function anchor(bytes32 root, uint32 count, bytes32 typeCode) external {
        if (root == bytes32(0) || count == 0) revert CertificateRegistryInvalidBatch(root, count);
        if (_batches[root].anchoredAt != 0) revert CertificateRegistryRootAlreadyAnchored(root);
        (uint32 agencyIndex, uint16 typeId) = _authorizeAnchor(msg.sender, typeCode);
        _batches[root] = Batch(msg.sender, uint40(block.timestamp), count, typeId, false);
        emit BatchAnchored(root, agencyIndex, msg.sender, typeCode, count);
    }

    /// @inheritdoc ICertificateRegistry
    function setStatus(bytes32 root, uint256 index, Status status, uint8 reason) external {
        _setStatus(root, index >> 8, uint256(1) << (index & 0xff), status, reason);
    }

    /// @inheritdoc ICertificateRegistry
    function setStatusBulk(bytes32 root, uint256 word, uint256 mask, Status status, uint8 reason) external {
        _setStatus(root, word, mask, status, reason);
    }

    /// @inheritdoc ICertificateRegistry
    function revokeCertificates(bytes32 root, uint256 wordAndReason, uint256 mask) external {
        uint256 word = wordAndReason >> 8;
        if (!_isOwnBatchRange(root, word, mask)) _requireManagedRange(root, word, mask);
        _revoked[root][word] |= mask;
        emit CertificatesRevoked(root, word, mask, uint8(wordAndReason));
    }

    /// @inheritdoc ICertificateRegistry
    function revokeBatch(bytes32 root, uint8 reason) external {
        _requireManagedBatch(root);
        _batches[root].revoked = true;
        emit BatchRevoked(root, reason);
    }

    /// @inheritdoc ICertificateRegistry
    function anchorAuditHead(bytes32 head, uint64 count) external {
        if (!_isActiveKey(msg.sender)) revert TrustRegistryKeyNotActive(msg.sender);
        if (head == bytes32(0) || count == 0) revert CertificateRegistryInvalidAuditHead(head, count);
        bytes32 code = _agencyRecord(_agencyOfKey(msg.sender)).code;
        emit AuditHeadAnchored(code, msg.sender, head, count, uint40(block.timestamp));
    }

    /// @inheritdoc ICertificateRegistry
    function statusOf(bytes32 root, uint256 index) public view returns (Status) {
        Batch storage batch = _batches[root];
        if (batch.anchoredAt == 0) revert CertificateRegistryUnknownBatch(root);
        if (index >= batch.count) revert CertificateRegistryIndexOutOfRange(root, index >> 8, uint256(1) << (index & 0xff));
        return _statusOf(batch, root, index);
    }

    /// @inheritdoc ICertificateRegistry
    function inspect(
        bytes32 root,
        uint256 index,
        bytes32 digest,
        bytes32[] calldata proof,
        address signer
    ) external view returns (Inspection memory result) {
        Batch memory batch = _batches[root];
        if (batch.anchoredAt == 0) return result;
        uint32 agencyIndex = _agencyOfKey(batch.key);
        AgencyRecord storage agencyRecord = _agencyRecord(agencyIndex);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(digest, index))));
        result.anchored = true;
        result.proofValid = index < batch.count && MerkleProof.verifyCalldata(proof, root, leaf);
        result.signerValid = wasKeyValidAt(signer, agencyIndex, batch.anchoredAt);
        result.anchorKeyValid = wasKeyValidAt(batch.key, agencyIndex, batch.anchoredAt);
        result.agencySuspended = agencyRecord.suspended;
        result.status = index < batch.count ? _statusOf(_batches[root], root, index) : Status.Active;
        result.agencyCode = agencyRecord.code;
        result.region = agencyRecord.region;
        result.typeCode = _typeCodeOf(batch.typeId);
        result.anchorKey = batch.key;
        result.anchoredAt = batch.anchoredAt;
        result.count = batch.count;
    }

    function _setStatus(bytes32 root, uint256 word, uint256 mask, Status status, uint8 reason) private {
        bool batchRevoked = _requireManagedRange(root, word, mask);
        if (status == Status.Revoked) {
            _revoked[root][word] |= mask;
        } else {
            if (batchRevoked || _revoked[root][word] & mask != 0) {
                revert CertificateRegistryAlreadyRevoked(root, word, mask);
            }
            if (status == Status.Suspended) _suspended[root][word] |= mask;
            else _suspended[root][word] &= ~mask;
        }
        emit StatusChanged(root, word, mask, status, reason);
    }

    /**
     * @dev Reverts unless the caller may manage batch `root` and `mask` is a non-empty set of
     * its certificates in `word`; returns whether the whole batch is revoked. Reads the batch's
     * slot once, without copying the record to memory.
     */
    function _requireManagedRange(bytes32 root, uint256 word, uint256 mask) private view returns (bool batchRevoked) {
        Batch storage batch = _batches[root];
        address key;
        uint32 count;
        (key, count, batchRevoked) = (batch.key, batch.count, batch.revoked);
        if (key == address(0)) revert CertificateRegistryUnknownBatch(root);
        if (!_canManageBatchOf(msg.sender, key)) revert CertificateRegistryNotBatchManager(msg.sender, root);
        if (!_isInside(count, word, mask)) revert CertificateRegistryIndexOutOfRange(root, word, mask);
    }

    /**
     * @dev The common case of {_requireManagedRange}, ~200 gas cheaper: whether the caller is
     * the key that anchored batch `root`, still active, and `mask` is a non-empty set of the
     * batch's certificates in `word`. It only ever accepts what {_requireManagedRange} accepts;
     * false decides nothing (the caller may be a sibling key or an authority): the caller of
     * this function then runs {_requireManagedRange}, which reverts or lets the call through.
     */
    function _isOwnBatchRange(bytes32 root, uint256 word, uint256 mask) private view returns (bool) {
        Batch storage batch = _batches[root];
        (address key, uint256 count) = (batch.key, batch.count);
        unchecked {
            // the test of {_isInside}, written out: the call would cost ~40 gas
            return key == msg.sender && _isActiveKey(msg.sender)
                && mask != 0 && word <= count >> 8 && mask >> (count - (word << 8)) == 0;
        }
    }

    function _requireManagedBatch(bytes32 root) private view returns (Batch memory batch) {
        batch = _batches[root];
        if (batch.anchoredAt == 0) revert CertificateRegistryUnknownBatch(root);
        if (!_canManageBatchOf(msg.sender, batch.key)) revert CertificateRegistryNotBatchManager(msg.sender, root);
    }

    function _statusOf(Batch storage batch, bytes32 root, uint256 index) private view returns (Status) {
        uint256 bit = uint256(1) << (index & 0xff);
        if (batch.revoked || _revoked[root][index >> 8] & bit != 0) return Status.Revoked;
        if (_suspended[root][index >> 8] & bit != 0) return Status.Suspended;
        return Status.Active;
    }

    /**
     * @dev Whether `mask` is non-empty and every bit of it in `word` stands for an index below
     * `count`: `word` starts at most at `count`, and no bit at or above `count - word * 256` is
     * set (a shift by 256 or more gives zero, so a full word passes without a branch).
     */
    function _isInside(uint256 count, uint256 word, uint256 mask) private pure returns (bool) {
        unchecked {
            return mask != 0 && word <= count >> 8 && mask >> (count - (word << 8)) == 0;
        }
    }
}
