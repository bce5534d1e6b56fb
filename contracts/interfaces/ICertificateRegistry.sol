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

    /**
     * @notice Everything a verifier needs about one certificate, answered in one call.
     * @dev Never stored: only returned by {inspect}. Its field order is the ABI tuple that the
     * Python binding decodes, so it must not be reordered, and storage packing does not apply
     * to ABI encoding (every field takes a 32-byte word whatever the order).
     */
    // solhint-disable-next-line gas-struct-packing
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
    error CertificateRegistryInvalidAuditHead(bytes32 head, uint64 count);

    /**
     * @notice A batch root was anchored by {anchor}.
     * @param root The batch root: the StandardMerkleTree root over the batch's
     * `(bytes32 digest, uint256 index)` leaves.
     * @param agency The 1-based index of the anchoring key's agency (the `agency` of
     * `AgencyRegistered`).
     * @param key The anchoring key, the caller of {anchor}.
     * @param typeCode The certificate type of the whole batch: a 21-character type code, ASCII,
     * left-aligned and zero-padded in a `bytes32`.
     * @param count The number of certificates in the batch (leaf indexes `0..count-1`).
     */
    event BatchAnchored(
        bytes32 indexed root,
        uint32 indexed agency,
        address indexed key,
        bytes32 typeCode,
        uint32 count
    );
    /**
     * @notice The status of certificates of batch `root` was set by {setStatus} or
     * {setStatusBulk}.
     * @param root The batch root.
     * @param word The 256-certificate word of the batch's status bit fields.
     * @param mask The certificates changed: bit `i` stands for the certificate at index
     * `word * 256 + i` (a single bit for {setStatus}).
     * @param status The status set.
     * @param reason The GB status code given by the caller (01 有效, 02 暂扣, 03 撤销, 04 注销,
     * 07 吊销, 99 其他); the contract takes any value and does not store it.
     */
    event StatusChanged(bytes32 indexed root, uint256 word, uint256 mask, Status status, uint8 reason);
    /**
     * @notice Certificates revoked by {revokeCertificates}: as {StatusChanged} with status
     * Revoked. Anonymous, to save a topic (375 gas): its only topic is `root`, and it is the
     * one event of this contract with a single topic (every other one has its signature and at
     * least one indexed field), which is how an indexer tells it apart.
     * @param root The batch root.
     * @param word The 256-certificate word of the batch's status bit fields.
     * @param mask The certificates revoked: bit `i` stands for the certificate at index
     * `word * 256 + i`.
     * @param reason The GB status code given by the caller (03 撤销, 04 注销, 07 吊销, 99 其他 as
     * the issuer uses them); not stored.
     */
    event CertificatesRevoked(bytes32 indexed root, uint256 word, uint256 mask, uint8 reason) anonymous;
    /**
     * @notice Every certificate of batch `root` was revoked by {revokeBatch}.
     * @param root The batch root.
     * @param reason The GB status code given by the caller (03 撤销, 04 注销, 07 吊销, 99 其他 as
     * the issuer uses them); not stored.
     */
    event BatchRevoked(bytes32 indexed root, uint8 reason);
    /**
     * @notice An agency anchored the head of its staff audit log by {anchorAuditHead}.
     * @param agency The agency's code (统一社会信用代码), ASCII, left-aligned and zero-padded in a
     * `bytes32`: auditors filter by it.
     * @param key The anchoring key, the caller of {anchorAuditHead}.
     * @param head The hash of the log's entry number `count` (the head of a hash chain: it
     * commits to every entry before it).
     * @param count The number of entries in the agency's log up to and including `head`.
     * @param anchoredAt The block timestamp of the anchor.
     */
    event AuditHeadAnchored(
        bytes32 indexed agency,
        address indexed key,
        bytes32 head,
        uint64 count,
        uint40 anchoredAt
    );

    /**
     * @notice Anchors a batch root of `count` certificates of `typeCode`.
     *
     * Requirements:
     * - the caller is an active key of an unsuspended agency granted `typeCode`;
     * - `root` is non-zero and not anchored yet; `count` is non-zero.
     *
     * @param root The batch root: the StandardMerkleTree root over the leaves
     * `(bytes32 digest, uint256 index)`, `index` from 0 to `count - 1`.
     * @param count The number of certificates in the batch.
     * @param typeCode The certificate type of every certificate in the batch: a 21-character
     * type code, ASCII, left-aligned and zero-padded in a `bytes32`.
     */
    function anchor(bytes32 root, uint32 count, bytes32 typeCode) external;

    /**
     * @notice Sets the status of the certificate at `index` of batch `root`.
     * `reason` is the GB status code (01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他).
     *
     * Requirements:
     * - the caller is an active key of the anchoring agency or an authority of its region;
     * - `index` is inside the batch; a revoked certificate cannot change status.
     *
     * @param root The batch root.
     * @param index The certificate's leaf index in the batch, below its `count`.
     * @param status The new status: Active clears the suspended bit, Suspended sets it, Revoked
     * sets the revoked bit for good.
     * @param reason The GB status code, only emitted in {StatusChanged}, not stored.
     */
    function setStatus(bytes32 root, uint256 index, Status status, uint8 reason) external;

    /**
     * @notice Sets the status of up to 256 certificates of batch `root` at once: bit `i` of
     * `mask` stands for the certificate at index `word * 256 + i`.
     *
     * Requirements: as {setStatus}, for every certificate in `mask`.
     *
     * @param root The batch root.
     * @param word The 256-certificate word: certificates `word * 256` to `word * 256 + 255`.
     * @param mask The certificates to change; non-zero, and every set bit must stand for an
     * index below the batch's `count`.
     * @param status The new status, as in {setStatus}.
     * @param reason The GB status code, only emitted in {StatusChanged}, not stored.
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
     *
     * @param root The batch root.
     * @param wordAndReason The 256-certificate word shifted left by 8, ORed with the GB status
     * code in the low byte: `word << 8 | reason`.
     * @param mask The certificates to revoke; non-zero, and every set bit must stand for an
     * index below the batch's `count`.
     */
    function revokeCertificates(bytes32 root, uint256 wordAndReason, uint256 mask) external;

    /**
     * @notice Revokes every certificate of batch `root` in one write.
     *
     * Requirements:
     * - the caller is an active key of the anchoring agency or an authority of its region.
     *
     * @param root The batch root.
     * @param reason The GB status code, only emitted in {BatchRevoked}, not stored.
     */
    function revokeBatch(bytes32 root, uint8 reason) external;

    /**
     * @notice Anchors the head of the caller's agency's staff audit log (sign-ins, issuance,
     * unmasking, approvals, key changes…): the issuer keeps the log hash-chained, and an anchored
     * head makes a log rewritten before it detectable, even if the whole chain was re-hashed.
     * Only emits {AuditHeadAnchored} (the log itself, and any personal data, stay off chain); a
     * suspended agency may still anchor, so its log stays accountable while it is investigated.
     *
     * Requirements:
     * - the caller is an active key of an agency;
     * - `head` is non-zero and `count` is non-zero.
     *
     * @param head The hash of the log's entry number `count`.
     * @param count The number of entries of the agency's log up to and including `head`.
     */
    function anchorAuditHead(bytes32 head, uint64 count) external;

    /**
     * @notice The status of the certificate at `index` of batch `root` (reverts for an unknown
     * batch or an index outside it).
     * @param root The batch root.
     * @param index The certificate's leaf index in the batch.
     * @return Revoked if the batch or the certificate is revoked, else Suspended if the
     * certificate is suspended, else Active.
     */
    function statusOf(bytes32 root, uint256 index) external view returns (Status);

    /**
     * @notice Answers a verifier in one call: the batch, the certificate's status, whether
     * `proof` places `(digest, index)` under `root`, and whether `signer` was a good key of the
     * anchoring agency when the batch was anchored.
     *
     * @param root The batch root.
     * @param index The certificate's leaf index in the batch.
     * @param digest The certificate digest: the root of the tree over its field leaves.
     * @param proof The Merkle proof of the leaf `(digest, index)` in the batch tree, from the
     * leaf up to, not including, `root`.
     * @param signer The key recovered from the certificate's EIP-712 seal.
     * @return The {Inspection}: all zeros (`anchored` false) for an unknown root; `status` is
     * Active for an index outside the batch, whose `proofValid` is false.
     */
    function inspect(
        bytes32 root,
        uint256 index,
        bytes32 digest,
        bytes32[] calldata proof,
        address signer
    ) external view returns (Inspection memory);
}
