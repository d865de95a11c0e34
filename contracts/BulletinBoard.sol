// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Bitmaps} from "./Bitmaps.sol";
import {SecclSigning} from "./SecclSigning.sol";

/// @notice What a session's consensus contract tells the board: whether an election was tallied.
interface IElectionRecord {
    /// @notice Whether the election of `round` has been tallied.
    function isTallied(uint64 round) external view returns (bool);
}

/// @title BulletinBoard — SecCL's trusted bulletin board (TBB)
/// @notice Records every update in two steps, and every global model, with its round and author,
///         and enforces the order of a session's rounds. First each participant's update is
///         committed (its digest, signed by its author); once the commitments are closed, its
///         bytes are revealed here, in the transaction's calldata, where every party reads them
///         over its own connection: the server is not a channel anybody depends on, and nobody
///         can copy an update it has not seen before the commitments closed. An update whose
///         bytes are not revealed by the reveal deadline, or that anyone proves invalid by
///         naming one offending entry, is not eligible for election. Each round's tie seed is
///         the XOR of secret salts every revealed update carries, so no single party chooses it.
///         Anyone may relay a post: the author's signature proves authorship, so the server can
///         relay but never forge. A model delivery that differs from the board, or a model never
///         posted, is recorded here as an accusation that the chain itself checked.
/// @dev Round r opens when the model of round r-1 is posted (round 1 at deployment, where the
///      initial model is recorded). Its phases are fixed at deployment, counted from its opening:
///      commitments until `updateDeadline = openedAt + updatePhase` (or until every participant
///      has committed); reveals until `revealDeadline = updateDeadline + revealPhase` (or until
///      every committed update is revealed); ballots, in the consensus contract, until
///      `ballotDeadline = revealDeadline + ballotPhase`; the model, after the election is
///      tallied, by `ballotDeadline + modelPhase`.
contract BulletinBoard {
    // ───────────────────────────── TYPES ─────────────────────────────

    /// @notice SecCL's message kinds. Evaluations are recorded by the consensus contract, which
    ///         recomputes their digest from the scores it counts; the board records the others.
    enum Kind {
        Update,
        Evaluation,
        Model
    }

    /// @notice What the chain proved against the server.
    enum Offence {
        DeliveryMismatch,
        ModelNotPosted
    }

    /// @notice One round's schedule and progress, as the consensus contract and participants read it.
    /// @dev Only `openedAt` and the bitmaps are stored: the deadlines follow from the phases,
    ///      `updates` is the commitments' count, and a round's model is posted exactly when a
    ///      later round has opened. Eligible for election are `revealBitmap & ~invalidBitmap`.
    struct RoundInfo {
        uint64 openedAt;
        uint64 updateDeadline;
        uint64 revealDeadline;
        uint64 ballotDeadline;
        uint64 modelDeadline;
        uint16 updates;
        bool modelPosted;
        uint256 updateBitmap;
        uint256 revealBitmap;
        uint256 invalidBitmap;
    }

    /// @notice The session's fixed settings, passed to the constructor.
    /// @dev `dimension`, `updateSize` and `valueBound` are an update's format: every update
    ///      shares exactly `updateSize` (⌈s·d⌉) coordinates of a `dimension`-parameter model, each
    ///      value a float32 of magnitude at most the float32 whose bits are `valueBound`.
    struct Settings {
        address consensus;
        bytes32 nonce;
        uint64 updatePhase;
        uint64 revealPhase;
        uint64 ballotPhase;
        uint64 modelPhase;
        bytes32 initialModel;
        uint32 dimension;
        uint32 updateSize;
        uint32 valueBound;
    }

    // ───────────────────────────── CONSTANTS ─────────────────────────────

    /// @notice The most participants a session may register (bitmaps of one word; the consensus
    ///         contract packs Borda totals in at most 16 bits, which hold 255·255 points).
    uint256 public constant MAX_PARTICIPANTS = 256;

    /// @dev An update message, as `seccl.protocol.messages` encodes it (version 4):
    ///      "SCCL" | version u8 | kind u8 | round u64 | author (20 bytes) | salt (32 bytes) |
    ///      dimension u32 | count u32 | count indices u32 | count values float32, big-endian.
    bytes4 private constant MAGIC = "SCCL";
    uint8 private constant VERSION = 4;
    uint256 private constant SALT_OFFSET = 34;
    uint256 private constant SIZES_OFFSET = 66;
    uint256 private constant ENTRIES_OFFSET = 74;
    uint32 private constant ABS_MASK = 0x7fffffff;
    uint32 private constant FLOAT_INFINITY = 0x7f800000;

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice Round `round` opened at `openedAt` (unix time); its phases run from then.
    event RoundOpened(uint64 indexed round, uint64 openedAt);

    /// @notice `digest`, signed by `author`, was recorded as a `kind` message of `round` (for an
    ///         update: its commitment; its bytes follow in {UpdateRevealed}).
    event MessagePosted(uint64 indexed round, Kind indexed kind, address indexed author, bytes32 digest);

    /// @notice The bytes of `author`'s update `digest` of `round` were revealed: they are the
    ///         `message` argument of the `revealUpdate` call this transaction made.
    event UpdateRevealed(uint64 indexed round, address indexed author, bytes32 digest);

    /// @notice `prover` proved `author`'s revealed update of `round` invalid at entry `position`.
    event UpdateProvenInvalid(uint64 indexed round, address indexed author, uint256 position, address prover);

    /// @notice `accuser` proved `offence` against the server in `round`; `digest` is the digest
    ///         the server delivered (zero for a missing model).
    event ServerCaught(uint64 indexed round, address indexed accuser, Offence offence, bytes32 digest);

    // ───────────────────────────── ERRORS ─────────────────────────────

    /// @notice The participant list is empty, too long, or holds the zero address, the server or a duplicate.
    error BulletinInvalidParticipants(uint256 position);
    /// @notice Every phase must last at least one second, the consensus address must be set, and
    ///         the update format must be possible (0 < updateSize ≤ dimension, a finite bound).
    error BulletinInvalidSettings();
    /// @notice `round` has not been opened yet (the board is at `currentRound`).
    error BulletinRoundNotOpen(uint64 round, uint64 currentRound);
    /// @notice `round` is over: its model is posted (the board is at `currentRound`).
    error BulletinRoundClosed(uint64 round, uint64 currentRound);
    /// @notice The update phase of `round` ended at `deadline`.
    error BulletinUpdatePhaseOver(uint64 round, uint64 deadline);
    /// @notice `author` is not a registered participant.
    error BulletinUnknownAuthor(address author);
    /// @notice `author` already has a `kind` message in `round`.
    error BulletinAlreadyPosted(uint64 round, Kind kind, address author);
    /// @notice The signature recovers to `signer`, not to `expected`.
    error BulletinInvalidSignature(address expected, address signer);
    /// @notice The reveals of `round` open when every update is committed or at `updateDeadline`.
    error BulletinRevealPhaseNotOpen(uint64 round, uint64 updateDeadline);
    /// @notice The reveal phase of `round` ended at `deadline`.
    error BulletinRevealPhaseOver(uint64 round, uint64 deadline);
    /// @notice Only `author` may reveal its update; `caller` is not it.
    error BulletinNotAuthor(address author, address caller);
    /// @notice `author` committed no update in `round`.
    error BulletinNotCommitted(uint64 round, address author);
    /// @notice `author`'s update of `round` was already revealed.
    error BulletinAlreadyRevealed(uint64 round, address author);
    /// @notice `author`'s update of `round` has not been revealed.
    error BulletinNotRevealed(uint64 round, address author);
    /// @notice The bytes hash to `actual`, not to the committed `committed`.
    error BulletinRevealMismatch(bytes32 committed, bytes32 actual);
    /// @notice The revealed bytes are not an update of `round` by its author in the session's
    ///         format; the first wrong byte is at `offset`.
    error BulletinMalformedUpdate(uint64 round, uint256 offset);
    /// @notice Entry `position` of the update is valid (or out of range): the proof is refuted.
    error BulletinProofRefuted(uint64 round, address author, uint256 position);
    /// @notice `author`'s update of `round` was already proven invalid.
    error BulletinAlreadyInvalid(uint64 round, address author);
    /// @notice The model of `round` can be posted only after its election was tallied.
    error BulletinNotTallied(uint64 round);
    /// @notice Two lists had `a` and `b` entries, or an index `b` was out of a list of `a`.
    error BulletinWrongLength(uint256 a, uint256 b);
    /// @notice The chain does not support the accusation of `offence` in `round`.
    error BulletinAccusationRefuted(uint64 round, Offence offence);

    // ───────────────────────────── STORAGE ─────────────────────────────

    address private immutable _server;
    address private immutable _consensus;
    bytes32 private immutable _nonce;
    uint64 private immutable _updatePhase;
    uint64 private immutable _revealPhase;
    uint64 private immutable _ballotPhase;
    uint64 private immutable _modelPhase;
    uint32 private immutable _dimension;
    uint32 private immutable _updateSize;
    uint32 private immutable _valueBound;
    /// @dev The open round and when it opened share one slot (with the accusation count), so a
    ///      post or a ballot learns both from one read.
    uint64 private _currentRound;
    uint64 private _currentOpenedAt;
    uint64 private _caughtCount;
    address[] private _participants;
    mapping(address participant => uint256 indexPlusOne) private _indexPlusOne;
    mapping(uint64 round => uint64 openedAt) private _openedAt;
    mapping(uint64 round => uint256 bitmap) private _updateBitmap;
    mapping(uint64 round => uint256 bitmap) private _revealBitmap;
    mapping(uint64 round => uint256 bitmap) private _invalidBitmap;
    mapping(uint64 round => bytes32 seed) private _tieSeed;
    mapping(uint64 round => mapping(Kind => mapping(address author => bytes32 digest))) private _digests;

    // ───────────────────────────── LOGIC ─────────────────────────────

    /// @notice Starts a session with the deployer as its server, `participants_` registered in
    ///         this order (a participant's index is its position), the initial model recorded as
    ///         the server's model of round 0, and round 1 open.
    /// @dev `settings.consensus` is the address the session's consensus contract will have; that
    ///      contract checks at deployment that the board names it, so the two point at each other.
    constructor(address[] memory participants_, Settings memory settings) {
        uint256 count = participants_.length;
        if (count == 0 || count > MAX_PARTICIPANTS) revert BulletinInvalidParticipants(count);
        if (
            settings.consensus == address(0) || settings.updatePhase == 0 || settings.revealPhase == 0
                || settings.ballotPhase == 0 || settings.modelPhase == 0 || settings.updateSize == 0
                || settings.updateSize > settings.dimension || settings.valueBound >= FLOAT_INFINITY
        ) revert BulletinInvalidSettings();
        _server = msg.sender;
        for (uint256 i = 0; i < count; ++i) {
            address p = participants_[i];
            if (p == address(0) || p == msg.sender || _indexPlusOne[p] != 0) {
                revert BulletinInvalidParticipants(i);
            }
            _indexPlusOne[p] = i + 1;
        }
        _participants = participants_;
        _consensus = settings.consensus;
        _nonce = settings.nonce;
        _updatePhase = settings.updatePhase;
        _revealPhase = settings.revealPhase;
        _ballotPhase = settings.ballotPhase;
        _modelPhase = settings.modelPhase;
        _dimension = settings.dimension;
        _updateSize = settings.updateSize;
        _valueBound = settings.valueBound;
        _digests[0][Kind.Model][msg.sender] = settings.initialModel;
        _openedAt[0] = uint64(block.timestamp);
        emit MessagePosted(0, Kind.Model, msg.sender, settings.initialModel);
        _open(1);
    }

    /// @notice Records `digest` as `author`'s update commitment of the open round `round`: the
    ///         SHA-256 of the update message its author will reveal after the phase.
    /// @dev Anyone may relay; reverts unless the round is open and in its update phase, the
    ///      author is a participant without an update this round, and `signature` is the author's.
    function postUpdate(uint64 round, address author, bytes32 digest, bytes calldata signature) external {
        uint64 deadline = _openRound(round) + _updatePhase;
        if (block.timestamp > deadline) revert BulletinUpdatePhaseOver(round, deadline);
        uint256 indexPlusOne = _indexPlusOne[author];
        if (indexPlusOne == 0) revert BulletinUnknownAuthor(author);
        uint256 bit = 1 << (indexPlusOne - 1);
        uint256 bitmap = _updateBitmap[round];
        if (bitmap & bit != 0) revert BulletinAlreadyPosted(round, Kind.Update, author);
        _checkSignature(author, round, uint8(Kind.Update), digest, signature);

        _digests[round][Kind.Update][author] = digest;
        _updateBitmap[round] = bitmap | bit;
        emit MessagePosted(round, Kind.Update, author, digest);
    }

    /// @notice Reveals the bytes of the caller's committed update of `round`: `message` must hash
    ///         (SHA-256) to the commitment and be an update of that round by that author in the
    ///         session's format. Its salt joins the round's tie seed. Only the author may reveal.
    /// @dev Readers take the bytes from the calldata of the transaction that {UpdateRevealed}
    ///      names, so the author must call directly: a relay (a contract, or anyone who copied the
    ///      bytes from a pending transaction) could otherwise reveal them where no reader finds
    ///      them, and keep the author from being assessed. Only the header and the length are
    ///      checked here; an entry that breaks the rules is left to {proveInvalid}, so an honest
    ///      reveal pays for no loop over its entries.
    function revealUpdate(uint64 round, address author, bytes calldata message) external {
        if (msg.sender != author) revert BulletinNotAuthor(author, msg.sender);
        uint64 openedAt = _openRound(round);
        uint256 committed = _updateBitmap[round];
        uint64 updateDeadline = openedAt + _updatePhase;
        if (Bitmaps.count(committed) < _participants.length && block.timestamp <= updateDeadline) {
            revert BulletinRevealPhaseNotOpen(round, updateDeadline);
        }
        uint64 deadline = updateDeadline + _revealPhase;
        if (block.timestamp > deadline) revert BulletinRevealPhaseOver(round, deadline);
        uint256 bit = _bit(author);
        if (committed & bit == 0) revert BulletinNotCommitted(round, author);
        uint256 revealed = _revealBitmap[round];
        if (revealed & bit != 0) revert BulletinAlreadyRevealed(round, author);
        bytes32 digest = _digests[round][Kind.Update][author];
        bytes32 actual = sha256(message);
        if (actual != digest) revert BulletinRevealMismatch(digest, actual);
        _checkFormat(round, author, message);

        _revealBitmap[round] = revealed | bit;
        _tieSeed[round] ^= bytes32(message[SALT_OFFSET:SIZES_OFFSET]);
        emit UpdateRevealed(round, author, digest);
    }

    /// @notice Proves `author`'s revealed update of `round` invalid: `message` is its revealed
    ///         bytes and entry `position` breaks a rule (an index not below the dimension or not
    ///         above the previous one, or a value NaN, infinite or beyond the bound). The update
    ///         is then not eligible for election. Anyone may prove it while the round is open.
    function proveInvalid(uint64 round, address author, bytes calldata message, uint256 position) external {
        _openRound(round);
        uint256 bit = _bit(author);
        if (_revealBitmap[round] & bit == 0) revert BulletinNotRevealed(round, author);
        uint256 invalid = _invalidBitmap[round];
        if (invalid & bit != 0) revert BulletinAlreadyInvalid(round, author);
        bytes32 digest = _digests[round][Kind.Update][author];
        bytes32 actual = sha256(message);
        if (actual != digest) revert BulletinRevealMismatch(digest, actual);
        if (position >= _updateSize || _entryValid(message, position)) {
            revert BulletinProofRefuted(round, author, position);
        }

        _invalidBitmap[round] = invalid | bit;
        emit UpdateProvenInvalid(round, author, position, msg.sender);
    }

    /// @notice Records `digest`, signed by the server, as the global model round `round`
    ///         produced, and opens the next round.
    /// @dev Anyone may relay; reverts unless `round` is open and its election was tallied.
    function postModel(uint64 round, bytes32 digest, bytes calldata signature) external {
        _openRound(round);
        if (!IElectionRecord(_consensus).isTallied(round)) revert BulletinNotTallied(round);
        _checkSignature(_server, round, uint8(Kind.Model), digest, signature);

        _digests[round][Kind.Model][_server] = digest;
        emit MessagePosted(round, Kind.Model, _server, digest);
        _open(round + 1);
    }

    /// @notice Proves that the server delivered to `recipient`, as the model of `round`, a
    ///         digest other than the one the board holds.
    /// @dev `signature` is the server's over {SecclSigning-deliveryDigest} with kind DELIVERY.
    ///      Only models are delivered by the server (updates are revealed on this board), so
    ///      only a model delivery can be accused, once the board holds the model of that round.
    function accuseDelivery(
        uint64 round,
        Kind kind,
        address recipient,
        address[] calldata authors,
        bytes32[] calldata digests,
        uint256 position,
        bytes calldata signature
    ) external {
        if (authors.length != digests.length) revert BulletinWrongLength(authors.length, digests.length);
        if (position >= authors.length) revert BulletinWrongLength(authors.length, position);
        bytes32 statement = SecclSigning.deliveryDigest(uint8(kind), recipient, authors, digests);
        _checkSignature(_server, round, SecclSigning.DELIVERY, statement, signature);

        bytes32 delivered = digests[position];
        bytes32 recorded = _digests[round][kind][authors[position]];
        if (kind != Kind.Model || recorded == bytes32(0) || recorded == delivered) {
            revert BulletinAccusationRefuted(round, Offence.DeliveryMismatch);
        }
        _caught(round, Offence.DeliveryMismatch, delivered);
    }

    /// @notice Proves that the server has not posted the model of `round` by its deadline.
    function accuseMissingModel(uint64 round) external {
        RoundInfo memory info = roundInfo(round);
        if (info.openedAt == 0 || info.modelPosted || block.timestamp <= info.modelDeadline) {
            revert BulletinAccusationRefuted(round, Offence.ModelNotPosted);
        }
        _caught(round, Offence.ModelNotPosted, bytes32(0));
    }

    // ───────────────────────────── VIEWS ─────────────────────────────

    /// @notice The session's server, the only author of models and delivery statements.
    function server() external view returns (address) {
        return _server;
    }

    /// @notice The session's consensus contract.
    function consensus() external view returns (address) {
        return _consensus;
    }

    /// @notice The session's random nonce, bound into every signature.
    function nonce() external view returns (bytes32) {
        return _nonce;
    }

    /// @notice The seed of `round`'s tie-break order (see {SecclSigning-tieKey}): the XOR of the
    ///         salts of the round's revealed updates, final once its reveal phase has closed.
    function tieSeedOf(uint64 round) external view returns (bytes32) {
        return _tieSeed[round];
    }

    /// @notice The phase lengths, in seconds, fixed at deployment.
    function phases()
        external
        view
        returns (uint64 updatePhase, uint64 revealPhase, uint64 ballotPhase, uint64 modelPhase)
    {
        return (_updatePhase, _revealPhase, _ballotPhase, _modelPhase);
    }

    /// @notice The update format fixed at deployment: the model's parameter count, the number
    ///         of coordinates every update shares, and the float32 bits of the value bound.
    function updateFormat() external view returns (uint32 dimension, uint32 updateSize, uint32 valueBound) {
        return (_dimension, _updateSize, _valueBound);
    }

    /// @notice The open round (every earlier one has its model on the board).
    function currentRound() external view returns (uint64) {
        return _currentRound;
    }

    /// @notice The registered participants, in index order.
    function participants() external view returns (address[] memory) {
        return _participants;
    }

    /// @notice How many participants are registered.
    function participantCount() external view returns (uint256) {
        return _participants.length;
    }

    /// @notice Whether `account` is registered, and its index if so.
    function participantIndex(address account) external view returns (bool registered, uint256 index) {
        uint256 indexPlusOne = _indexPlusOne[account];
        return indexPlusOne == 0 ? (false, 0) : (true, indexPlusOne - 1);
    }

    /// @notice The digest `author` posted as its `kind` message of `round`, or zero if none.
    function digestOf(uint64 round, Kind kind, address author) external view returns (bytes32) {
        return _digests[round][kind][author];
    }

    /// @notice Every participant's update digest of `round`, by index (zero where none).
    function updatesOf(uint64 round) external view returns (bytes32[] memory digests) {
        uint256 count = _participants.length;
        digests = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            digests[i] = _digests[round][Kind.Update][_participants[i]];
        }
    }

    /// @notice The schedule and progress of `round` (all zero if it has not opened).
    function roundInfo(uint64 round) public view returns (RoundInfo memory info) {
        uint64 current = _currentRound;
        if (round > current) return info;
        uint64 openedAt = round == current ? _currentOpenedAt : _openedAt[round];
        info.openedAt = openedAt;
        info.updateDeadline = openedAt + _updatePhase;
        info.revealDeadline = info.updateDeadline + _revealPhase;
        info.ballotDeadline = info.revealDeadline + _ballotPhase;
        info.modelDeadline = info.ballotDeadline + _modelPhase;
        info.updateBitmap = _updateBitmap[round];
        info.revealBitmap = _revealBitmap[round];
        info.invalidBitmap = _invalidBitmap[round];
        info.updates = uint16(Bitmaps.count(info.updateBitmap));
        info.modelPosted = round < current;
    }

    /// @notice How many accusations the chain has upheld against the server.
    function caughtCount() external view returns (uint64) {
        return _caughtCount;
    }

    /// @notice The hash a signer signs for `digest` of `kind` in `round` of this session.
    function signedHash(uint64 round, uint8 kind, bytes32 digest) public view returns (bytes32) {
        return SecclSigning.signedHash(address(this), _consensus, _nonce, round, kind, digest);
    }

    // ───────────────────────────── INTERNAL ─────────────────────────────

    function _open(uint64 round) private {
        _currentRound = round;
        _currentOpenedAt = uint64(block.timestamp);
        _openedAt[round] = uint64(block.timestamp);
        emit RoundOpened(round, uint64(block.timestamp));
    }

    /// @dev Reverts unless `round` is the open round; returns when it opened.
    function _openRound(uint64 round) private view returns (uint64 openedAt) {
        uint64 current = _currentRound;
        if (round > current) revert BulletinRoundNotOpen(round, current);
        if (round < current) revert BulletinRoundClosed(round, current);
        return _currentOpenedAt;
    }

    /// @dev `account`'s bit in the round bitmaps; reverts unless it is a participant.
    function _bit(address account) private view returns (uint256) {
        uint256 indexPlusOne = _indexPlusOne[account];
        if (indexPlusOne == 0) revert BulletinUnknownAuthor(account);
        return 1 << (indexPlusOne - 1);
    }

    /// @dev Reverts unless `message` is an update of `round` by `author` in the session's format
    ///      (header, sizes and length); its entries are not read.
    function _checkFormat(uint64 round, address author, bytes calldata message) private view {
        uint256 size = _updateSize;
        if (message.length != ENTRIES_OFFSET + 8 * size) revert BulletinMalformedUpdate(round, message.length);
        if (bytes4(message[0:4]) != MAGIC) revert BulletinMalformedUpdate(round, 0);
        if (uint8(message[4]) != VERSION) revert BulletinMalformedUpdate(round, 4);
        if (uint8(message[5]) != uint8(Kind.Update)) revert BulletinMalformedUpdate(round, 5);
        if (uint64(bytes8(message[6:14])) != round) revert BulletinMalformedUpdate(round, 6);
        if (address(bytes20(message[14:34])) != author) revert BulletinMalformedUpdate(round, 14);
        if (uint32(bytes4(message[66:70])) != _dimension) revert BulletinMalformedUpdate(round, SIZES_OFFSET);
        if (uint32(bytes4(message[70:74])) != size) revert BulletinMalformedUpdate(round, SIZES_OFFSET + 4);
    }

    /// @dev Whether entry `position` (below the update size) of a well-formed update is valid:
    ///      its index is below the dimension and above the previous entry's, and its value's
    ///      magnitude is at most the bound (NaN and infinities compare above any finite bound).
    function _entryValid(bytes calldata message, uint256 position) private view returns (bool) {
        uint256 offset = ENTRIES_OFFSET + 4 * position;
        uint32 index = uint32(bytes4(message[offset:offset + 4]));
        if (index >= _dimension) return false;
        if (position > 0 && index <= uint32(bytes4(message[offset - 4:offset]))) return false;
        uint256 value = ENTRIES_OFFSET + 4 * _updateSize + 4 * position;
        return (uint32(bytes4(message[value:value + 4])) & ABS_MASK) <= _valueBound;
    }

    function _checkSignature(address signer_, uint64 round, uint8 kind, bytes32 digest, bytes calldata signature)
        private
        view
    {
        address signer = SecclSigning.recoverSigner(signedHash(round, kind, digest), signature);
        if (signer != signer_) revert BulletinInvalidSignature(signer_, signer);
    }

    function _caught(uint64 round, Offence offence, bytes32 digest) private {
        _caughtCount += 1;
        emit ServerCaught(round, msg.sender, offence, digest);
    }
}
