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
/// @notice Records the digest of every update and every global model with its round and author,
///         and enforces the order of a session's rounds. Anyone may relay a post: the author's
///         signature proves authorship, so the server can relay but never forge, and an author
///         the server ignores posts its own message. The server signs what it delivers; a
///         delivery that differs from the board, or a model never posted, is recorded here as an
///         accusation that the chain itself checked.
/// @dev Round r opens when the model of round r-1 is posted (round 1 at deployment, where the
///      initial model is recorded). Its phases are fixed at deployment, counted from its opening:
///      updates until `openedAt + updatePhase` (or until every participant has posted one);
///      ballots, in the consensus contract, until `openedAt + updatePhase + ballotPhase`; the
///      model, after the election is tallied, is due by `ballotDeadline + modelPhase`.
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
        DeliveredUnrecorded,
        ModelNotPosted
    }

    /// @notice One round's schedule and progress, as the consensus contract and participants read it.
    /// @dev Only `openedAt` and `updateBitmap` are stored: the deadlines follow from the phases,
    ///      `updates` is the bitmap's count, and a round's model is posted exactly when a later
    ///      round has opened.
    struct RoundInfo {
        uint64 openedAt;
        uint64 updateDeadline;
        uint64 ballotDeadline;
        uint64 modelDeadline;
        uint16 updates;
        bool modelPosted;
        uint256 updateBitmap;
    }

    /// @notice The session's fixed settings, passed to the constructor.
    struct Settings {
        address consensus;
        bytes32 nonce;
        bytes32 tieSeed;
        uint64 updatePhase;
        uint64 ballotPhase;
        uint64 modelPhase;
        bytes32 initialModel;
    }

    // ───────────────────────────── CONSTANTS ─────────────────────────────

    /// @notice The most participants a session may register (bitmaps of one word; the consensus
    ///         contract packs Borda totals in at most 16 bits, which hold 255·255 points).
    uint256 public constant MAX_PARTICIPANTS = 256;

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice Round `round` opened at `openedAt` (unix time); its phases run from then.
    event RoundOpened(uint64 indexed round, uint64 openedAt);

    /// @notice `digest`, signed by `author`, was recorded as a `kind` message of `round`.
    event MessagePosted(uint64 indexed round, Kind indexed kind, address indexed author, bytes32 digest);

    /// @notice `accuser` proved `offence` against the server in `round`; `digest` is the digest
    ///         the server delivered (zero for a missing model).
    event ServerCaught(uint64 indexed round, address indexed accuser, Offence offence, bytes32 digest);

    // ───────────────────────────── ERRORS ─────────────────────────────

    /// @notice The participant list is empty, too long, or holds the zero address, the server or a duplicate.
    error BulletinInvalidParticipants(uint256 position);
    /// @notice Every phase must last at least one second, the consensus address must be set.
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
    bytes32 private immutable _tieSeed;
    uint64 private immutable _updatePhase;
    uint64 private immutable _ballotPhase;
    uint64 private immutable _modelPhase;
    /// @dev The open round and when it opened share one slot (with the accusation count), so a
    ///      post or a ballot learns both from one read.
    uint64 private _currentRound;
    uint64 private _currentOpenedAt;
    uint64 private _caughtCount;
    address[] private _participants;
    mapping(address participant => uint256 indexPlusOne) private _indexPlusOne;
    mapping(uint64 round => uint64 openedAt) private _openedAt;
    mapping(uint64 round => uint256 bitmap) private _updateBitmap;
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
            settings.consensus == address(0) || settings.updatePhase == 0 || settings.ballotPhase == 0
                || settings.modelPhase == 0
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
        _tieSeed = settings.tieSeed;
        _updatePhase = settings.updatePhase;
        _ballotPhase = settings.ballotPhase;
        _modelPhase = settings.modelPhase;
        _digests[0][Kind.Model][msg.sender] = settings.initialModel;
        _openedAt[0] = uint64(block.timestamp);
        emit MessagePosted(0, Kind.Model, msg.sender, settings.initialModel);
        _open(1);
    }

    /// @notice Records `digest` as `author`'s update of the open round `round`.
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

    /// @notice Proves that the server delivered to `recipient`, as the `kind` message of
    ///         `authors[position]` in `round`, a digest the board does not hold for it.
    /// @dev `signature` is the server's over {SecclSigning-deliveryDigest} with kind DELIVERY.
    ///      An update's delivery counts as a lie once the update phase has closed; a model's when
    ///      the board holds another model for that round.
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
        if (kind == Kind.Evaluation || recorded == delivered) {
            revert BulletinAccusationRefuted(round, Offence.DeliveryMismatch);
        }
        if (recorded != bytes32(0)) {
            _caught(round, Offence.DeliveryMismatch, delivered);
            return;
        }
        RoundInfo memory info = roundInfo(round);
        bool updatesClosed =
            info.openedAt != 0 && (info.updates == _participants.length || block.timestamp > info.updateDeadline);
        if (kind == Kind.Model || !updatesClosed) revert BulletinAccusationRefuted(round, Offence.DeliveredUnrecorded);
        _caught(round, Offence.DeliveredUnrecorded, delivered);
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

    /// @notice The public seed of the per-round tie-break order (see {SecclSigning-tieKey}).
    function tieSeed() external view returns (bytes32) {
        return _tieSeed;
    }

    /// @notice The phase lengths, in seconds, fixed at deployment.
    function phases() external view returns (uint64 updatePhase, uint64 ballotPhase, uint64 modelPhase) {
        return (_updatePhase, _ballotPhase, _modelPhase);
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
        info.ballotDeadline = info.updateDeadline + _ballotPhase;
        info.modelDeadline = info.ballotDeadline + _modelPhase;
        info.updateBitmap = _updateBitmap[round];
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
