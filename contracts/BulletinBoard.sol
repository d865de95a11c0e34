// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {SecclSigning} from "./SecclSigning.sol";

/// @title BulletinBoard — SecCL's trusted bulletin board (TBB)
/// @notice Records the digest of every SecCL message (update, evaluation, model) with its round,
///         kind and author. The server relays; the contract checks that the author signed the
///         digest, so the server can relay but never forge, and nothing recorded can be changed.
/// @dev Round 0 is open from deployment and holds the initial model; the model posted in round r
///      is the global model that round r produced.
contract BulletinBoard {
    // ───────────────────────────── TYPES ─────────────────────────────

    /// @notice The three SecCL message kinds (DESIGN.md: type a, type b and the global model).
    enum Kind {
        Update,
        Evaluation,
        Model
    }

    /// @notice What the board knows of a digest. Packed in one storage slot.
    struct Record {
        uint64 round;
        Kind kind;
        address author;
    }

    // ───────────────────────────── CONSTANTS ─────────────────────────────

    /// @notice The most participants a session may register (the consensus contract packs
    ///         Borda totals in 16 bits, which holds 255·255 points).
    uint256 public constant MAX_PARTICIPANTS = 256;

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice Round `round` was opened; every earlier round is closed for good.
    event RoundOpened(uint64 indexed round);

    /// @notice `digest`, signed by `author`, was recorded as a `kind` message of `round`.
    event MessagePosted(uint64 indexed round, Kind indexed kind, address indexed author, bytes32 digest);

    // ───────────────────────────── ERRORS ─────────────────────────────

    /// @notice Only the session's server may relay posts and open rounds.
    error BulletinUnauthorizedRelay(address caller);
    /// @notice The participant list is empty, too long, or holds the zero address, the server or a duplicate.
    error BulletinInvalidParticipants(uint256 position);
    /// @notice Rounds open one after another; `requested` is not the next one.
    error BulletinInvalidRound(uint64 requested, uint64 expected);
    /// @notice `round` is already closed (the board is at `currentRound`).
    error BulletinRoundClosed(uint64 round, uint64 currentRound);
    /// @notice `round` has not been opened yet (the board is at `currentRound`).
    error BulletinRoundNotOpen(uint64 round, uint64 currentRound);
    /// @notice `author` is not a registered participant (or not the server, for a model).
    error BulletinUnknownAuthor(address author, Kind kind);
    /// @notice `author` already has a `kind` message in `round`.
    error BulletinAlreadyPosted(uint64 round, Kind kind, address author);
    /// @notice `digest` is already on the board.
    error BulletinDuplicateDigest(bytes32 digest);
    /// @notice The signature recovers to `signer`, not to `author`.
    error BulletinInvalidSignature(address author, address signer);

    // ───────────────────────────── STORAGE ─────────────────────────────

    address private immutable _server;
    uint64 private _currentRound;
    address[] private _participants;
    mapping(address participant => uint256 indexPlusOne) private _indexPlusOne;
    mapping(bytes32 digest => Record) private _records;
    mapping(uint64 round => mapping(Kind => mapping(address author => bytes32 digest))) private _digests;

    // ───────────────────────────── LOGIC ─────────────────────────────

    /// @notice Starts a session with the deployer as its server and `participants_` registered,
    ///         in this order (a participant's index is its position).
    constructor(address[] memory participants_) {
        uint256 count = participants_.length;
        if (count == 0 || count > MAX_PARTICIPANTS) revert BulletinInvalidParticipants(count);
        _server = msg.sender;
        for (uint256 i = 0; i < count; ++i) {
            address p = participants_[i];
            if (p == address(0) || p == msg.sender || _indexPlusOne[p] != 0) {
                revert BulletinInvalidParticipants(i);
            }
            _indexPlusOne[p] = i + 1;
        }
        _participants = participants_;
        emit RoundOpened(0);
    }

    /// @notice Opens round `round`, which must be the next one, and closes the current one.
    function openRound(uint64 round) external {
        _onlyServer();
        uint64 expected = _currentRound + 1;
        if (round != expected) revert BulletinInvalidRound(round, expected);
        _currentRound = round;
        emit RoundOpened(round);
    }

    /// @notice Records `digest` as `author`'s `kind` message of the current round `round`.
    /// @dev Reverts unless the caller is the server, the round is the open one, the author is a
    ///      participant (or the server, for a model), has not posted this kind this round, the
    ///      digest is new, and `signature` is the author's EIP-191 signature of
    ///      {SecclSigning-signedHash}.
    function post(uint64 round, Kind kind, address author, bytes32 digest, bytes calldata signature)
        external
    {
        _onlyServer();
        uint64 current = _currentRound;
        if (round < current) revert BulletinRoundClosed(round, current);
        if (round > current) revert BulletinRoundNotOpen(round, current);
        bool authorized = kind == Kind.Model ? author == _server : _indexPlusOne[author] != 0;
        if (!authorized) revert BulletinUnknownAuthor(author, kind);
        if (_digests[round][kind][author] != bytes32(0)) revert BulletinAlreadyPosted(round, kind, author);
        if (_records[digest].author != address(0)) revert BulletinDuplicateDigest(digest);
        address signer = SecclSigning.recoverSigner(
            SecclSigning.signedHash(address(this), round, uint8(kind), digest), signature
        );
        if (signer != author) revert BulletinInvalidSignature(author, signer);

        _records[digest] = Record(round, kind, author);
        _digests[round][kind][author] = digest;
        emit MessagePosted(round, kind, author, digest);
    }

    // ───────────────────────────── VIEWS ─────────────────────────────

    /// @notice The session's server, the only account that may relay.
    function server() external view returns (address) {
        return _server;
    }

    /// @notice The round open for posts.
    function currentRound() external view returns (uint64) {
        return _currentRound;
    }

    /// @notice The registered participants, in index order.
    function participants() external view returns (address[] memory) {
        return _participants;
    }

    /// @notice Whether `account` is registered, and its index if so.
    function participantIndex(address account) external view returns (bool registered, uint256 index) {
        uint256 indexPlusOne = _indexPlusOne[account];
        return indexPlusOne == 0 ? (false, 0) : (true, indexPlusOne - 1);
    }

    /// @notice The record of `digest`; its author is the zero address when the board does not hold it.
    function recordOf(bytes32 digest) external view returns (Record memory) {
        return _records[digest];
    }

    /// @notice The digest `author` posted as its `kind` message of `round`, or zero if none.
    function digestOf(uint64 round, Kind kind, address author) external view returns (bytes32) {
        return _digests[round][kind][author];
    }

    /// @notice The hash an author signs to post `digest` as a `kind` message of `round` here.
    function signedHash(uint64 round, Kind kind, bytes32 digest) external view returns (bytes32) {
        return SecclSigning.signedHash(address(this), round, uint8(kind), digest);
    }

    function _onlyServer() private view {
        if (msg.sender != _server) revert BulletinUnauthorizedRelay(msg.sender);
    }
}
