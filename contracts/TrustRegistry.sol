// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ITrustRegistry} from "./interfaces/ITrustRegistry.sol";

/**
 * @title TrustRegistry
 * @notice The national trust registry: root → regional authorities → agencies → keys.
 *
 * The root holds `DEFAULT_ADMIN_ROLE` (a multisig or timelock in production). It is abstract:
 * {CertificateRegistry} extends it so that anchoring checks authority in the same storage, which
 * keeps an anchor under 60k gas (a call to a second contract alone would cost ~3.3k more).
 */
abstract contract TrustRegistry is AccessControl, ITrustRegistry {
    struct Authority {
        uint32 region;
        string name;
    }

    /// @dev An SM2 key: its record (as for a secp256k1 key) and its public key `X ‖ Y`.
    struct NationalKey {
        KeyRecord record;
        bytes32 x;
        bytes32 y;
    }

    /// @dev sm2p256v1 (GB/T 32918.5): y² = x³ - 3x + b over the prime field of `_SM2_P`.
    uint256 private constant _SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF;
    uint256 private constant _SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93;

    mapping(address account => Authority) private _authorities;
    mapping(bytes32 code => uint32 agencyIndex) private _agencyIndexes;
    mapping(uint32 agencyIndex => AgencyRecord) private _agencies;
    mapping(uint32 agencyIndex => address[]) private _agencyKeys;
    mapping(address key => KeyRecord) private _keys;
    /// @dev Non-zero when granted: the type's id, which a batch stores in 16 bits.
    mapping(uint32 agencyIndex => mapping(bytes32 typeCode => uint16 typeId)) private _grants;
    mapping(bytes32 typeCode => uint16 typeId) private _typeIds;
    bytes32[] private _typeCodes;
    uint32 private _agencyCount;
    mapping(bytes32 keyId => NationalKey) private _nationalKeys;
    mapping(uint32 agencyIndex => bytes32[]) private _agencyNationalKeys;

    constructor(address root) {
        _grantRole(DEFAULT_ADMIN_ROLE, root);
    }

    // ─── root ────────────────────────────────────────────────────────────────────────────

    /// @inheritdoc ITrustRegistry
    function addAuthority(address account, uint32 region, string calldata name)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (!_isRegion(region)) revert TrustRegistryInvalidRegion(region);
        if (_authorities[account].region != 0) revert TrustRegistryAuthorityExists(account);
        if (account == address(0) || _keys[account].agency != 0) revert TrustRegistryKeyInUse(account);
        _authorities[account] = Authority(region, name);
        emit AuthorityAdded(account, region, name);
    }

    /// @inheritdoc ITrustRegistry
    function removeAuthority(address account) external onlyRole(DEFAULT_ADMIN_ROLE) {
        uint32 region = _authorities[account].region;
        if (region == 0) revert TrustRegistryUnknownAuthority(account);
        delete _authorities[account];
        emit AuthorityRemoved(account, region);
    }

    // ─── authorities ─────────────────────────────────────────────────────────────────────

    /// @inheritdoc ITrustRegistry
    function registerAgency(
        bytes32 code,
        uint32 region,
        string calldata name,
        address key,
        bytes32[] calldata typeCodes
    ) external {
        if (!_isRegion(region)) revert TrustRegistryInvalidRegion(region);
        if (!_governs(_authorities[msg.sender].region, region)) {
            revert TrustRegistryNotAuthorityOfRegion(msg.sender, region);
        }
        if (code == bytes32(0)) revert TrustRegistryInvalidAgencyCode(code);
        if (_agencyIndexes[code] != 0) revert TrustRegistryAgencyExists(code);
        uint32 agencyIndex = ++_agencyCount;
        _agencyIndexes[code] = agencyIndex;
        _agencies[agencyIndex] = AgencyRecord(code, region, false, name);
        emit AgencyRegistered(code, agencyIndex, region, name);
        _addKey(agencyIndex, code, key, 0);
        _grant(agencyIndex, code, typeCodes);
    }

    /// @inheritdoc ITrustRegistry
    function grantTypes(bytes32 code, bytes32[] calldata typeCodes) external {
        uint32 agencyIndex = _requireAuthorityOf(code);
        _grant(agencyIndex, code, typeCodes);
    }

    /// @inheritdoc ITrustRegistry
    function revokeTypes(bytes32 code, bytes32[] calldata typeCodes) external {
        uint32 agencyIndex = _requireAuthorityOf(code);
        for (uint256 i = 0; i < typeCodes.length; ++i) {
            delete _grants[agencyIndex][typeCodes[i]];
        }
        emit TypesRevoked(code, typeCodes);
    }

    /// @inheritdoc ITrustRegistry
    function suspendAgency(bytes32 code) external {
        uint32 agencyIndex = _requireAuthorityOf(code);
        _agencies[agencyIndex].suspended = true;
        emit AgencySuspended(code, msg.sender);
    }

    /// @inheritdoc ITrustRegistry
    function reinstateAgency(bytes32 code) external {
        uint32 agencyIndex = _requireAuthorityOf(code);
        _agencies[agencyIndex].suspended = false;
        emit AgencyReinstated(code, msg.sender);
    }

    // ─── authorities or the agency itself ────────────────────────────────────────────────

    /// @inheritdoc ITrustRegistry
    function addKey(bytes32 code, address key, uint40 validFrom) external {
        uint32 agencyIndex = _requireAgencyIndex(code);
        _requireManagerOf(agencyIndex, code);
        _addKey(agencyIndex, code, key, validFrom);
    }

    /// @inheritdoc ITrustRegistry
    function retireKey(address key) external {
        (KeyRecord storage record, bytes32 code) = _requireKey(key);
        _requireManagerOfKey(key, record.agency, code);
        if (record.retiredAt == 0) record.retiredAt = uint40(block.timestamp);
        emit KeyRetired(code, key, record.retiredAt);
    }

    /// @inheritdoc ITrustRegistry
    function compromiseKey(address key, uint40 since) external {
        (KeyRecord storage record, bytes32 code) = _requireKey(key);
        _requireManagerOfKey(key, record.agency, code);
        if (since == 0 || since > block.timestamp) revert TrustRegistryInvalidTime(since);
        if (record.compromisedSince == 0 || since < record.compromisedSince) record.compromisedSince = since;
        emit KeyCompromised(code, key, record.compromisedSince);
    }

    /// @inheritdoc ITrustRegistry
    function addNationalKey(bytes32 code, bytes calldata publicKey, uint40 validFrom) external {
        uint32 agencyIndex = _requireAgencyIndex(code);
        _requireManagerOf(agencyIndex, code);
        if (!_isSm2Point(publicKey)) revert TrustRegistryInvalidNationalKey(publicKey);
        bytes32 keyId = keccak256(publicKey);
        if (_nationalKeys[keyId].record.agency != 0) revert TrustRegistryNationalKeyInUse(keyId);
        validFrom = _validFrom(validFrom);
        _nationalKeys[keyId] = NationalKey(
            KeyRecord(agencyIndex, validFrom, 0, 0), bytes32(publicKey[:32]), bytes32(publicKey[32:])
        );
        _agencyNationalKeys[agencyIndex].push(keyId);
        emit NationalKeyAdded(code, keyId, publicKey, validFrom);
    }

    /// @inheritdoc ITrustRegistry
    function retireNationalKey(bytes32 keyId) external {
        (KeyRecord storage record, bytes32 code) = _requireNationalKey(keyId);
        _requireManagerOf(record.agency, code);
        if (record.retiredAt == 0) record.retiredAt = uint40(block.timestamp);
        emit NationalKeyRetired(code, keyId, record.retiredAt);
    }

    /// @inheritdoc ITrustRegistry
    function compromiseNationalKey(bytes32 keyId, uint40 since) external {
        (KeyRecord storage record, bytes32 code) = _requireNationalKey(keyId);
        _requireAuthorityOf(code);
        if (since == 0 || since > block.timestamp) revert TrustRegistryInvalidTime(since);
        if (record.compromisedSince == 0 || since < record.compromisedSince) record.compromisedSince = since;
        emit NationalKeyCompromised(code, keyId, record.compromisedSince);
    }

    // ─── views ───────────────────────────────────────────────────────────────────────────

    /// @inheritdoc ITrustRegistry
    function authorityRegion(address account) external view returns (uint32) {
        return _authorities[account].region;
    }

    /// @inheritdoc ITrustRegistry
    function agency(bytes32 code) external view returns (AgencyRecord memory) {
        return _agencies[_requireAgencyIndex(code)];
    }

    /// @inheritdoc ITrustRegistry
    function agencyKeys(bytes32 code) external view returns (address[] memory) {
        return _agencyKeys[_requireAgencyIndex(code)];
    }

    /// @inheritdoc ITrustRegistry
    function keyRecord(address key) external view returns (KeyRecord memory record, bytes32 code) {
        (KeyRecord storage stored, bytes32 agencyCode) = _requireKey(key);
        return (stored, agencyCode);
    }

    /// @inheritdoc ITrustRegistry
    function agencyNationalKeys(bytes32 code) external view returns (bytes32[] memory) {
        return _agencyNationalKeys[_requireAgencyIndex(code)];
    }

    /// @inheritdoc ITrustRegistry
    function nationalKeyRecord(bytes32 keyId)
        external
        view
        returns (KeyRecord memory record, bytes32 code, bytes memory publicKey)
    {
        (record, code) = _requireNationalKey(keyId);
        NationalKey storage stored = _nationalKeys[keyId];
        publicKey = abi.encodePacked(stored.x, stored.y);
    }

    /// @inheritdoc ITrustRegistry
    function wasNationalKeyValidAt(bytes32 keyId, uint40 time) external view returns (bool) {
        KeyRecord memory record = _nationalKeys[keyId].record;
        return record.agency != 0 && _isGoodAt(record, time);
    }

    /// @inheritdoc ITrustRegistry
    function isGranted(bytes32 code, bytes32 typeCode) external view returns (bool) {
        return _grants[_agencyIndexes[code]][typeCode] != 0;
    }

    /// @inheritdoc ITrustRegistry
    function wasKeyValidAt(address key, uint32 agencyIndex, uint40 time) public view returns (bool) {
        KeyRecord memory record = _keys[key];
        return record.agency != 0 && record.agency == agencyIndex && _isGoodAt(record, time);
    }

    // ─── for CertificateRegistry ─────────────────────────────────────────────────────────

    /// @dev Reverts unless `key` may anchor `typeCode` now; returns its agency and the type id.
    function _authorizeAnchor(address key, bytes32 typeCode) internal view returns (uint32 agencyIndex, uint16 typeId) {
        KeyRecord memory record = _keys[key];
        agencyIndex = record.agency;
        if (agencyIndex == 0 || !_isActive(record)) revert TrustRegistryKeyNotActive(key);
        AgencyRecord storage stored = _agencies[agencyIndex];
        if (stored.suspended) revert TrustRegistryAgencySuspended(stored.code);
        typeId = _grants[agencyIndex][typeCode];
        if (typeId == 0) revert TrustRegistryTypeNotGranted(stored.code, typeCode);
    }

    /**
     * @dev Whether `account` may manage what `anchorKey` anchored: an active key of the same
     * agency, or an authority of the agency's region. The common case (the anchoring key itself)
     * costs one storage read.
     */
    function _canManageBatchOf(address account, address anchorKey) internal view returns (bool) {
        KeyRecord memory caller = _keys[account];
        if (caller.agency != 0) {
            if (!_isActive(caller)) return false;
            return account == anchorKey || caller.agency == _keys[anchorKey].agency;
        }
        return _governs(_authorities[account].region, _agencies[_keys[anchorKey].agency].region);
    }

    /**
     * @dev Whether `key` is a key of some agency and active, as {_isActive} says. Reads the
     * record's slot as one word (agency: bits 0-31, validFrom 32-71, retiredAt 72-111,
     * compromisedSince 112-151, nothing above): ~170 gas less than the struct's fields, for
     * the hot path of {CertificateRegistry-revokeCertificates}.
     */
    function _isActiveKey(address key) internal view returns (bool active) {
        KeyRecord storage record = _keys[key];
        // Assembly on purpose: one `sload` of the packed record instead of four field reads
        // (see the @dev above). Read-only; it relies on the field order of {KeyRecord}.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let raw := sload(record.slot)
            active := and(
                and(
                    // agency != 0
                    iszero(iszero(and(raw, 0xffffffff))),
                    // retiredAt == 0 && validFrom <= now, as one test: (retiredAt << 40 | validFrom) <= now
                    iszero(gt(and(shr(32, raw), 0xffffffffffffffffffff), timestamp()))
                ),
                // now < compromisedSince, or never compromised (0 - 1 wraps to the maximum)
                iszero(gt(timestamp(), sub(shr(112, raw), 1)))
            )
        }
    }

    function _agencyOfKey(address key) internal view returns (uint32) {
        return _keys[key].agency;
    }

    function _agencyRecord(uint32 agencyIndex) internal view returns (AgencyRecord storage) {
        return _agencies[agencyIndex];
    }

    function _typeCodeOf(uint16 typeId) internal view returns (bytes32) {
        return _typeCodes[typeId - 1];
    }

    // ─── internals ───────────────────────────────────────────────────────────────────────

    function _grant(uint32 agencyIndex, bytes32 code, bytes32[] calldata typeCodes) private {
        for (uint256 i = 0; i < typeCodes.length; ++i) {
            bytes32 typeCode = typeCodes[i];
            if (typeCode == bytes32(0)) revert TrustRegistryInvalidTypeCode(typeCode);
            uint16 typeId = _typeIds[typeCode];
            if (typeId == 0) {
                _typeCodes.push(typeCode);
                typeId = uint16(_typeCodes.length);
                _typeIds[typeCode] = typeId;
            }
            _grants[agencyIndex][typeCode] = typeId;
        }
        emit TypesGranted(code, typeCodes);
    }

    function _addKey(uint32 agencyIndex, bytes32 code, address key, uint40 validFrom) private {
        if (key == address(0) || _keys[key].agency != 0 || _authorities[key].region != 0) {
            revert TrustRegistryKeyInUse(key);
        }
        validFrom = _validFrom(validFrom);
        _keys[key] = KeyRecord(agencyIndex, validFrom, 0, 0);
        _agencyKeys[agencyIndex].push(key);
        emit KeyAdded(code, key, validFrom);
    }

    /// @dev A new key's `validFrom`: 0 means now; a key cannot vouch for what came before it.
    function _validFrom(uint40 validFrom) private view returns (uint40) {
        if (validFrom == 0) return uint40(block.timestamp);
        if (validFrom < block.timestamp) revert TrustRegistryInvalidTime(validFrom);
        return validFrom;
    }

    function _requireNationalKey(bytes32 keyId) private view returns (KeyRecord storage record, bytes32 code) {
        record = _nationalKeys[keyId].record;
        if (record.agency == 0) revert TrustRegistryUnknownNationalKey(keyId);
        code = _agencies[record.agency].code;
    }

    function _requireAgencyIndex(bytes32 code) private view returns (uint32 agencyIndex) {
        agencyIndex = _agencyIndexes[code];
        if (agencyIndex == 0) revert TrustRegistryUnknownAgency(code);
    }

    function _requireKey(address key) private view returns (KeyRecord storage record, bytes32 code) {
        record = _keys[key];
        if (record.agency == 0) revert TrustRegistryUnknownKey(key);
        code = _agencies[record.agency].code;
    }

    function _requireAuthorityOf(bytes32 code) private view returns (uint32 agencyIndex) {
        agencyIndex = _requireAgencyIndex(code);
        uint32 region = _agencies[agencyIndex].region;
        if (!_governs(_authorities[msg.sender].region, region)) {
            revert TrustRegistryNotAuthorityOfRegion(msg.sender, region);
        }
    }

    /// @dev The agency's authority, or an active key of the agency.
    function _requireManagerOf(uint32 agencyIndex, bytes32 code) private view {
        KeyRecord memory caller = _keys[msg.sender];
        bool isOwnKey = caller.agency == agencyIndex && _isActive(caller);
        if (!isOwnKey && !_governs(_authorities[msg.sender].region, _agencies[agencyIndex].region)) {
            revert TrustRegistryNotAgencyManager(msg.sender, code);
        }
    }

    /// @dev The agency's authority, or `key` itself while active: one stolen key cannot
    /// retire or discredit its sibling keys.
    function _requireManagerOfKey(address key, uint32 agencyIndex, bytes32 code) private view {
        bool isSelf = msg.sender == key && _isActive(_keys[key]);
        if (!isSelf && !_governs(_authorities[msg.sender].region, _agencies[agencyIndex].region)) {
            revert TrustRegistryNotAgencyManager(msg.sender, code);
        }
    }

    /// @dev May act now: valid already, not retired, not compromised.
    function _isActive(KeyRecord memory record) private view returns (bool) {
        return record.retiredAt == 0 && _isGoodAt(record, uint40(block.timestamp));
    }

    /// @dev Was good at `time`: what a key anchored up to and including its retirement second
    /// stays valid; from `compromisedSince` on nothing is.
    function _isGoodAt(KeyRecord memory record, uint40 time) private pure returns (bool) {
        return record.validFrom <= time
            && (record.retiredAt == 0 || time <= record.retiredAt)
            && (record.compromisedSince == 0 || time < record.compromisedSince);
    }

    /// @dev Whether `publicKey` is 64 bytes `X ‖ Y` of a point of sm2p256v1: coordinates below p and
    /// y² = x³ - 3x + b (mod p). Rejects the all-zero key (b ≠ 0) and a mistyped key, for ~100 gas.
    function _isSm2Point(bytes calldata publicKey) private pure returns (bool) {
        if (publicKey.length != 64) return false;
        uint256 x = uint256(bytes32(publicKey[:32]));
        uint256 y = uint256(bytes32(publicKey[32:]));
        if (x >= _SM2_P || y >= _SM2_P) return false;
        uint256 rhs = addmod(mulmod(mulmod(x, x, _SM2_P), x, _SM2_P), _SM2_P - mulmod(3, x, _SM2_P), _SM2_P);
        return mulmod(y, y, _SM2_P) == addmod(rhs, _SM2_B, _SM2_P);
    }

    /// @dev A six-digit GB/T 2260 code: province 11–82, then prefecture and county.
    function _isRegion(uint32 region) private pure returns (bool) {
        return region >= 110000 && region <= 829999;
    }

    /// @dev Whether an authority of `governing` governs `region` (0 governs nothing).
    function _governs(uint32 governing, uint32 region) private pure returns (bool) {
        if (governing == 0) return false;
        if (governing % 10000 == 0) return governing / 10000 == region / 10000;
        if (governing % 100 == 0) return governing / 100 == region / 100;
        return governing == region;
    }
}
