// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title ICertificateRegistry
 * @notice Anchored batches of certificates and their status.
 *
 * A batch is a StandardMerkleTree over `(bytes32 digest, uint256 index)` leaves; its root is
 * anchored in one transaction by a key of an agency granted the batch's type. Status is kept per
 * certificate as two bit fields per batch (suspended, revoked) indexed by leaf index, 256
 * certificates a storage word; revoked is final. Personal data never reaches this contract.
 */
interface ICertificateRegistry {
    /// @notice A certificate's status. Revoked is final.
    enum Status {
        Active,
        Suspended,
        Revoked
    }

    /// @notice Everything a verifier needs about one certificate, answered in one call.
    struct Inspection {
        bool anchored;
        bool proofValid;
        bool signerValid;
        bool anchorKeyValid;
        bool agencySuspended;
        Status status;
        bytes32 agencyCode;
        uint32 region;
        bytes32 typeCode;
        address anchorKey;
        uint40 anchoredAt;
        uint32 count;
    }

    error CertificateRegistryInvalidBatch(bytes32 root, uint32 count);
    error CertificateRegistryRootAlreadyAnchored(bytes32 root);
    error CertificateRegistryUnknownBatch(bytes32 root);
    error CertificateRegistryIndexOutOfRange(bytes32 root, uint256 word, uint256 mask);
    error CertificateRegistryAlreadyRevoked(bytes32 root, uint256 word, uint256 mask);
    error CertificateRegistryNotBatchManager(address account, bytes32 root);

    event BatchAnchored(
        bytes32 indexed root,
        uint32 indexed agency,
        address indexed key,
        bytes32 typeCode,
        uint32 count
    );
    event StatusChanged(bytes32 indexed root, uint256 word, uint256 mask, Status status, uint8 reason);
    /**
     * @notice Certificates revoked by {revokeCertificates}: as {StatusChanged} with status
     * Revoked. Anonymous, to save a topic (375 gas): its only topic is `root`, and it is the
     * one event of this contract with a single topic (every other one has its signature and at
     * least one indexed field), which is how an indexer tells it apart.
     */
    event CertificatesRevoked(bytes32 indexed root, uint256 word, uint256 mask, uint8 reason) anonymous;
    event BatchRevoked(bytes32 indexed root, uint8 reason);

    /**
     * @notice Anchors a batch root of `count` certificates of `typeCode`.
     *
     * Requirements:
     * - the caller is an active key of an unsuspended agency granted `typeCode`;
     * - `root` is non-zero and not anchored yet; `count` is non-zero.
     */
    function anchor(bytes32 root, uint32 count, bytes32 typeCode) external;

    /**
     * @notice Sets the status of the certificate at `index` of batch `root`.
     * `reason` is the GB status code (01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他).
     *
     * Requirements:
     * - the caller is an active key of the anchoring agency or an authority of its region;
     * - `index` is inside the batch; a revoked certificate cannot change status.
     */
    function setStatus(bytes32 root, uint256 index, Status status, uint8 reason) external;

    /**
     * @notice Sets the status of up to 256 certificates of batch `root` at once: bit `i` of
     * `mask` stands for the certificate at index `word * 256 + i`.
     *
     * Requirements: as {setStatus}, for every certificate in `mask`.
     */
    function setStatusBulk(bytes32 root, uint256 word, uint256 mask, Status status, uint8 reason) external;

    /**
     * @notice Revokes up to 256 certificates of batch `root` at once, as {setStatusBulk} with
     * status Revoked, for ~2,200 gas less (under 200 gas a certificate for a full word): bit `i`
     * of `mask` stands for the certificate at index `word * 256 + i`, and `wordAndReason` is
     * `word << 8 | reason` (one argument instead of two saves ~220 gas of calldata and
     * decoding). Emits {CertificatesRevoked}.
     *
     * Requirements: as {setStatusBulk}.
     */
    function revokeCertificates(bytes32 root, uint256 wordAndReason, uint256 mask) external;

    /**
     * @notice Revokes every certificate of batch `root` in one write.
     *
     * Requirements:
     * - the caller is an active key of the anchoring agency or an authority of its region.
     */
    function revokeBatch(bytes32 root, uint8 reason) external;

    /// @notice The status of the certificate at `index` of batch `root` (reverts outside the batch).
    function statusOf(bytes32 root, uint256 index) external view returns (Status);

    /**
     * @notice Answers a verifier in one call: the batch, the certificate's status, whether
     * `proof` places `(digest, index)` under `root`, and whether `signer` was a good key of the
     * anchoring agency when the batch was anchored.
     */
    function inspect(
        bytes32 root,
        uint256 index,
        bytes32 digest,
        bytes32[] calldata proof,
        address signer
    ) external view returns (Inspection memory);
}
