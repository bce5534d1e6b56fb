// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title ITrustRegistry
 * @notice Who may issue which certificate types, where, and with which keys.
 *
 * A national root appoints regional authorities by GB/T 2260 region code (an authority for
 * `330000` governs every `33xxxx`, one for `330100` every `3301xx`). An authority registers the
 * agencies of its region with the certificate types they may issue and the keys they sign with.
 * Keys keep their history (`validFrom`, `retiredAt`, `compromisedSince`) so that a verifier can
 * ask whether a key was good at the moment a batch was anchored.
 *
 * Beside its secp256k1 keys (which sign seals and send transactions) an agency has SM2 keys
 * (GB/T 32918, curve sm2p256v1) for the national co-seal. They cannot send transactions, so they
 * are registered by their public key (64 bytes `X ‖ Y`) under the key id `keccak256(X ‖ Y)`,
 * with the same history as the secp256k1 keys.
 */
interface ITrustRegistry {
    /// @notice A key's standing over time. All times are unix seconds; 0 means "not set".
    struct KeyRecord {
        uint32 agency;
        uint40 validFrom;
        uint40 retiredAt;
        uint40 compromisedSince;
    }

    /// @notice An agency as registered by its authority.
    struct AgencyRecord {
        bytes32 code;
        uint32 region;
        bool suspended;
        string name;
    }

    error TrustRegistryInvalidRegion(uint32 region);
    error TrustRegistryAuthorityExists(address account);
    error TrustRegistryUnknownAuthority(address account);
    error TrustRegistryNotAuthorityOfRegion(address account, uint32 region);
    error TrustRegistryAgencyExists(bytes32 code);
    error TrustRegistryUnknownAgency(bytes32 code);
    error TrustRegistryAgencySuspended(bytes32 code);
    error TrustRegistryInvalidAgencyCode(bytes32 code);
    error TrustRegistryKeyInUse(address key);
    error TrustRegistryUnknownKey(address key);
    error TrustRegistryKeyNotActive(address key);
    error TrustRegistryInvalidTime(uint40 time);
    error TrustRegistryNotAgencyManager(address account, bytes32 code);
    error TrustRegistryTypeNotGranted(bytes32 code, bytes32 typeCode);
    error TrustRegistryInvalidTypeCode(bytes32 typeCode);
    error TrustRegistryInvalidNationalKey(bytes publicKey);
    error TrustRegistryNationalKeyInUse(bytes32 keyId);
    error TrustRegistryUnknownNationalKey(bytes32 keyId);

    /**
     * @notice The root appointed `account` as the authority of `region` ({addAuthority}).
     * @param account The authority's address.
     * @param region The region it governs: a six-digit GB/T 2260 code as a number (`330000`
     * governs every `33xxxx`, `330100` every `3301xx`, a county code only itself).
     * @param name The authority's name, as given by the root.
     */
    event AuthorityAdded(address indexed account, uint32 indexed region, string name);

    /**
     * @notice The root removed the authority `account` ({removeAuthority}); the agencies it
     * registered stay registered.
     * @param account The former authority's address.
     * @param region The six-digit GB/T 2260 code of the region it governed.
     */
    event AuthorityRemoved(address indexed account, uint32 indexed region);

    /**
     * @notice An authority registered an agency ({registerAgency}). It is followed in the same
     * transaction by {KeyAdded} for the agency's first key and {TypesGranted} for its types.
     * @param code The agency's code: its 18-character 统一社会信用代码 (USCC), ASCII,
     * left-aligned and zero-padded in a `bytes32`.
     * @param agency The agency's index: 1-based, given in registration order; it is the
     * `agency` of its keys' {KeyRecord}s, of {wasKeyValidAt} and of `BatchAnchored`.
     * @param region The agency's region, a six-digit GB/T 2260 code.
     * @param name The agency's name.
     */
    event AgencyRegistered(bytes32 indexed code, uint32 indexed agency, uint32 indexed region, string name);

    /**
     * @notice An authority suspended the agency `code` ({suspendAgency}): it cannot anchor until
     * reinstated. Its existing batches keep their status.
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param by The authority that suspended it.
     */
    event AgencySuspended(bytes32 indexed code, address by);

    /**
     * @notice An authority reinstated the agency `code` ({reinstateAgency}): it may anchor again.
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param by The authority that reinstated it.
     */
    event AgencyReinstated(bytes32 indexed code, address by);

    /**
     * @notice Certificate types were granted to the agency `code` ({registerAgency},
     * {grantTypes}). Emitted once per call, also for an empty list.
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param typeCodes The type codes as passed by the caller, each a 21-character type code,
     * ASCII, left-aligned and zero-padded in a `bytes32`; some may have been granted already.
     */
    event TypesGranted(bytes32 indexed code, bytes32[] typeCodes);

    /**
     * @notice Certificate types were withdrawn from the agency `code` ({revokeTypes}); batches
     * it anchored before stay valid.
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param typeCodes The type codes as passed by the caller (21-character codes, ASCII in a
     * `bytes32`); codes that were not granted are included too, and changed nothing.
     */
    event TypesRevoked(bytes32 indexed code, bytes32[] typeCodes);

    /**
     * @notice A signing key was added to the agency `code` ({registerAgency}, {addKey}).
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param key The new key's address.
     * @param validFrom When the key becomes good, in unix seconds: the block time when the
     * caller passed 0.
     */
    event KeyAdded(bytes32 indexed code, address indexed key, uint40 validFrom);

    /**
     * @notice The key `key` of the agency `code` is retired ({retireKey}): it anchors nothing
     * more, and what it anchored up to and including `retiredAt` stays valid.
     * @param code The code of the key's agency (USCC as ASCII in a `bytes32`).
     * @param key The retired key.
     * @param retiredAt The key's retirement time in unix seconds: the block time of the first
     * {retireKey} (a repeated call emits the original time again).
     */
    event KeyRetired(bytes32 indexed code, address indexed key, uint40 retiredAt);

    /**
     * @notice The key `key` of the agency `code` is compromised ({compromiseKey}): batches it
     * anchored at or after `since` are invalid.
     * @param code The code of the key's agency (USCC as ASCII in a `bytes32`).
     * @param key The compromised key.
     * @param since The compromise time now in force, in unix seconds: the earliest `since`
     * declared so far, so it may be earlier than the one passed to this call.
     */
    event KeyCompromised(bytes32 indexed code, address indexed key, uint40 since);

    /**
     * @notice An SM2 key was added to the agency `code` ({addNationalKey}).
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param keyId The key's id: `keccak256(publicKey)`.
     * @param publicKey The SM2 public key, 64 bytes `X ‖ Y` (big-endian coordinates, no `0x04`),
     * carried so that an index or an offline snapshot holds the key itself.
     * @param validFrom When the key becomes good, in unix seconds: the block time when the
     * caller passed 0.
     */
    event NationalKeyAdded(bytes32 indexed code, bytes32 indexed keyId, bytes publicKey, uint40 validFrom);

    /**
     * @notice The SM2 key `keyId` of the agency `code` is retired ({retireNationalKey}): what it
     * sealed up to and including `retiredAt` stays valid.
     * @param code The code of the key's agency (USCC as ASCII in a `bytes32`).
     * @param keyId The retired key's id.
     * @param retiredAt The key's retirement time in unix seconds: the block time of the first
     * {retireNationalKey} (a repeated call emits the original time again).
     */
    event NationalKeyRetired(bytes32 indexed code, bytes32 indexed keyId, uint40 retiredAt);

    /**
     * @notice The SM2 key `keyId` of the agency `code` is compromised ({compromiseNationalKey}):
     * seals of certificates anchored at or after `since` are invalid.
     * @param code The code of the key's agency (USCC as ASCII in a `bytes32`).
     * @param keyId The compromised key's id.
     * @param since The compromise time now in force, in unix seconds: the earliest `since`
     * declared so far, so it may be earlier than the one passed to this call.
     */
    event NationalKeyCompromised(bytes32 indexed code, bytes32 indexed keyId, uint40 since);

    /**
     * @notice Appoints `account` as the authority of `region`.
     *
     * Requirements:
     * - the caller is the root;
     * - `region` is a six-digit GB/T 2260 code;
     * - `account` is not already an authority, nor an agency key.
     *
     * @param account The authority's address; not the zero address.
     * @param region The region it will govern: a six-digit GB/T 2260 code as a number, in
     * `110000..829999` (the national code `100000` is refused). A province code (`330000`)
     * governs the whole province, a prefecture code (`330100`) its prefecture, a county code
     * only itself.
     * @param name The authority's name, stored and emitted in {AuthorityAdded}.
     */
    function addAuthority(address account, uint32 region, string calldata name) external;

    /**
     * @notice Removes an authority. Its agencies stay registered.
     *
     * Requirements:
     * - the caller is the root;
     * - `account` is an authority.
     *
     * @param account The authority's address.
     */
    function removeAuthority(address account) external;

    /**
     * @notice Registers an agency of `region` with its first key and granted types.
     *
     * Requirements:
     * - the caller is an authority whose region contains `region`;
     * - `code` is unused and `key` belongs to no agency.
     *
     * @param code The agency's code: its 18-character 统一社会信用代码 (USCC), ASCII,
     * left-aligned and zero-padded in a `bytes32`; non-zero.
     * @param region The agency's region, a six-digit GB/T 2260 code in `110000..829999`.
     * @param name The agency's name.
     * @param key The agency's first signing key, valid from now; not the zero address, not an
     * authority.
     * @param typeCodes The certificate types granted: 21-character type codes, ASCII,
     * left-aligned and zero-padded in a `bytes32`, each non-zero; may be empty.
     */
    function registerAgency(
        bytes32 code,
        uint32 region,
        string calldata name,
        address key,
        bytes32[] calldata typeCodes
    ) external;

    /**
     * @notice Grants certificate types to an agency.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     *
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param typeCodes The types to grant: 21-character type codes, ASCII, left-aligned and
     * zero-padded in a `bytes32`, each non-zero; granting a type twice is harmless.
     */
    function grantTypes(bytes32 code, bytes32[] calldata typeCodes) external;

    /**
     * @notice Withdraws certificate types from an agency; what it anchored before stays valid.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     *
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param typeCodes The types to withdraw (21-character type codes, ASCII in a `bytes32`);
     * a type that is not granted is ignored.
     */
    function revokeTypes(bytes32 code, bytes32[] calldata typeCodes) external;

    /**
     * @notice Stops an agency from anchoring until it is reinstated.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     *
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     */
    function suspendAgency(bytes32 code) external;

    /**
     * @notice Lets a suspended agency anchor again.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     *
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     */
    function reinstateAgency(bytes32 code) external;

    /**
     * @notice Adds a signing key to an agency, valid from `validFrom` (0 = now).
     *
     * Requirements:
     * - the caller is the agency's authority or an active key of the agency;
     * - `key` belongs to no agency and is no authority;
     * - `validFrom` is 0 or not in the past (a key cannot vouch for what came before it).
     *
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param key The new key's address; not the zero address.
     * @param validFrom When the key becomes good, in unix seconds; 0 for the block time.
     */
    function addKey(bytes32 code, address key, uint40 validFrom) external;

    /**
     * @notice Retires a key now: it anchors nothing more, and what it anchored up to and
     * including this second stays valid.
     *
     * Requirements:
     * - the caller is the key's agency's authority, or the key itself while active.
     *
     * @param key The key to retire; retiring a retired key changes nothing.
     */
    function retireKey(address key) external;

    /**
     * @notice Marks a key compromised since `since`: batches it anchored at or after `since`
     * are invalid, those before stay valid. A later call may only move `since` earlier.
     *
     * Requirements:
     * - the caller is the key's agency's authority, or the key itself while active;
     * - `since` is not in the future.
     *
     * @param key The compromised key.
     * @param since Since when the key is compromised, in unix seconds; non-zero and at most the
     * block time.
     */
    function compromiseKey(address key, uint40 since) external;

    /**
     * @notice Adds an SM2 key (national co-seal) to an agency, valid from `validFrom` (0 = now).
     *
     * Requirements:
     * - the caller is the agency's authority or an active key of the agency (as for {addKey});
     * - `publicKey` is 64 bytes `X ‖ Y` of a point of sm2p256v1 (so not all zero);
     * - the key is registered to no agency yet;
     * - `validFrom` is 0 or not in the past.
     *
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param publicKey The SM2 public key: X then Y, 32 bytes each, big-endian, no `0x04` prefix.
     * @param validFrom When the key becomes good, in unix seconds; 0 for the block time.
     */
    function addNationalKey(bytes32 code, bytes calldata publicKey, uint40 validFrom) external;

    /**
     * @notice Retires an SM2 key now: what it sealed up to and including this second stays valid.
     *
     * Requirements:
     * - the caller is the key's agency's authority or an active key of that agency (an SM2 key
     *   sends no transactions, so the agency's secp256k1 key retires it when rotating);
     * - `keyId` is a registered SM2 key.
     *
     * @param keyId The key's id, `keccak256(publicKey)`; retiring a retired key changes nothing.
     */
    function retireNationalKey(bytes32 keyId) external;

    /**
     * @notice Marks an SM2 key compromised since `since`: seals of certificates anchored at or
     * after `since` are invalid. A later call may only move `since` earlier.
     *
     * Requirements:
     * - the caller is the key's agency's authority: unlike {compromiseKey} the agency's own keys
     *   may not, since the SM2 key cannot speak for itself and one stolen secp256k1 key must not
     *   discredit what the agency sealed before (it may still retire the key from now on);
     * - `keyId` is a registered SM2 key;
     * - `since` is not in the future.
     *
     * @param keyId The compromised key's id.
     * @param since Since when the key is compromised, in unix seconds; non-zero and at most the
     * block time.
     */
    function compromiseNationalKey(bytes32 keyId, uint40 since) external;

    /**
     * @notice The region of an authority, or 0 if `account` is none.
     * @param account The address to look up.
     * @return The authority's six-digit GB/T 2260 region code, or 0.
     */
    function authorityRegion(address account) external view returns (uint32);

    /**
     * @notice The agency registered under `code` (reverts if none).
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @return The agency's code, region (six-digit GB/T 2260 code), suspension flag and name.
     */
    function agency(bytes32 code) external view returns (AgencyRecord memory);

    /**
     * @notice The keys an agency ever had, oldest first (reverts for an unknown agency).
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @return The key addresses, retired and compromised ones included, in the order added.
     */
    function agencyKeys(bytes32 code) external view returns (address[] memory);

    /**
     * @notice A key's record and its agency's code (reverts if the key is unknown).
     * @param key The key's address.
     * @return record The key's agency index and its `validFrom`, `retiredAt` and
     * `compromisedSince` times (unix seconds, 0 for not set).
     * @return code The code of the key's agency (USCC as ASCII in a `bytes32`).
     */
    function keyRecord(address key) external view returns (KeyRecord memory record, bytes32 code);

    /**
     * @notice Whether `code` may issue `typeCode` now (false for an unknown agency). Says
     * nothing of suspension: see {agency}.
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @param typeCode The 21-character type code, ASCII in a `bytes32`.
     * @return True if the type is currently granted to the agency.
     */
    function isGranted(bytes32 code, bytes32 typeCode) external view returns (bool);

    /**
     * @notice Whether `key` was a good key of `agencyIndex` at `time`: `validFrom <= time`, not
     * retired before `time` (a key is still good at its retirement second), and `time` before
     * `compromisedSince` if set. Judged with the key's record as it is now.
     * @param key The key's address.
     * @param agencyIndex The agency's 1-based index (the `agency` of {AgencyRegistered}).
     * @param time The moment asked about, in unix seconds, typically a batch's anchoring time.
     * @return True if `key` belongs to that agency and was good at `time`.
     */
    function wasKeyValidAt(address key, uint32 agencyIndex, uint40 time) external view returns (bool);

    /**
     * @notice The SM2 keys an agency ever had, oldest first (reverts for an unknown agency).
     * @param code The agency's code (USCC as ASCII in a `bytes32`).
     * @return The key ids (`keccak256(publicKey)`), retired and compromised ones included, in
     * the order added.
     */
    function agencyNationalKeys(bytes32 code) external view returns (bytes32[] memory);

    /**
     * @notice An SM2 key's record, its agency's code and the key itself (reverts if unknown).
     * @param keyId The key's id, `keccak256(publicKey)`.
     * @return record The key's agency index and its `validFrom`, `retiredAt` and
     * `compromisedSince` times (unix seconds, 0 for not set).
     * @return code The code of the key's agency (USCC as ASCII in a `bytes32`).
     * @return publicKey The SM2 public key, 64 bytes `X ‖ Y`.
     */
    function nationalKeyRecord(bytes32 keyId)
        external
        view
        returns (KeyRecord memory record, bytes32 code, bytes memory publicKey);

    /**
     * @notice Whether the SM2 key `keyId` was good at `time`, by the rules of {wasKeyValidAt}:
     * `validFrom <= time`, not retired before `time`, `time` before `compromisedSince` if set.
     * @param keyId The key's id, `keccak256(publicKey)`.
     * @param time The moment asked about, in unix seconds, typically a batch's anchoring time.
     * @return True if the key is registered and was good at `time` (false for an unknown key).
     */
    function wasNationalKeyValidAt(bytes32 keyId, uint40 time) external view returns (bool);
}
