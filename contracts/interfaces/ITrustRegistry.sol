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

    event AuthorityAdded(address indexed account, uint32 indexed region, string name);
    event AuthorityRemoved(address indexed account, uint32 indexed region);
    event AgencyRegistered(bytes32 indexed code, uint32 indexed agency, uint32 indexed region, string name);
    event AgencySuspended(bytes32 indexed code, address by);
    event AgencyReinstated(bytes32 indexed code, address by);
    event TypesGranted(bytes32 indexed code, bytes32[] typeCodes);
    event TypesRevoked(bytes32 indexed code, bytes32[] typeCodes);
    event KeyAdded(bytes32 indexed code, address indexed key, uint40 validFrom);
    event KeyRetired(bytes32 indexed code, address indexed key, uint40 retiredAt);
    event KeyCompromised(bytes32 indexed code, address indexed key, uint40 since);

    /**
     * @notice Appoints `account` as the authority of `region`.
     *
     * Requirements:
     * - the caller is the root;
     * - `region` is a six-digit GB/T 2260 code;
     * - `account` is not already an authority, nor an agency key.
     */
    function addAuthority(address account, uint32 region, string calldata name) external;

    /**
     * @notice Removes an authority. Its agencies stay registered.
     *
     * Requirements:
     * - the caller is the root;
     * - `account` is an authority.
     */
    function removeAuthority(address account) external;

    /**
     * @notice Registers an agency of `region` with its first key and granted types.
     *
     * Requirements:
     * - the caller is an authority whose region contains `region`;
     * - `code` is unused and `key` belongs to no agency.
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
     */
    function grantTypes(bytes32 code, bytes32[] calldata typeCodes) external;

    /**
     * @notice Withdraws certificate types from an agency; what it anchored before stays valid.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     */
    function revokeTypes(bytes32 code, bytes32[] calldata typeCodes) external;

    /**
     * @notice Stops an agency from anchoring until it is reinstated.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     */
    function suspendAgency(bytes32 code) external;

    /**
     * @notice Lets a suspended agency anchor again.
     *
     * Requirements:
     * - the caller is an authority whose region contains the agency's region.
     */
    function reinstateAgency(bytes32 code) external;

    /**
     * @notice Adds a signing key to an agency, valid from `validFrom` (0 = now).
     *
     * Requirements:
     * - the caller is the agency's authority or an active key of the agency;
     * - `key` belongs to no agency and is no authority;
     * - `validFrom` is 0 or not in the past (a key cannot vouch for what came before it).
     */
    function addKey(bytes32 code, address key, uint40 validFrom) external;

    /**
     * @notice Retires a key now: it anchors nothing more, and what it anchored up to and
     * including this second stays valid.
     *
     * Requirements:
     * - the caller is the key's agency's authority, or the key itself while active.
     */
    function retireKey(address key) external;

    /**
     * @notice Marks a key compromised since `since`: batches it anchored at or after `since`
     * are invalid, those before stay valid. A later call may only move `since` earlier.
     *
     * Requirements:
     * - the caller is the key's agency's authority, or the key itself while active;
     * - `since` is not in the future.
     */
    function compromiseKey(address key, uint40 since) external;

    /// @notice The region of an authority, or 0 if `account` is none.
    function authorityRegion(address account) external view returns (uint32);

    /// @notice The agency registered under `code` (reverts if none).
    function agency(bytes32 code) external view returns (AgencyRecord memory);

    /// @notice The keys an agency ever had, oldest first.
    function agencyKeys(bytes32 code) external view returns (address[] memory);

    /// @notice A key's record and its agency's code (reverts if the key is unknown).
    function keyRecord(address key) external view returns (KeyRecord memory record, bytes32 code);

    /// @notice Whether `code` may issue `typeCode` now.
    function isGranted(bytes32 code, bytes32 typeCode) external view returns (bool);

    /// @notice Whether `key` was a good key of `agencyIndex` at `time`.
    function wasKeyValidAt(address key, uint32 agencyIndex, uint40 time) external view returns (bool);
}
