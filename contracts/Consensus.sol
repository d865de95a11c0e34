// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {BulletinBoard} from "./BulletinBoard.sol";
import {SecclSigning} from "./SecclSigning.sol";

/// @title Consensus — SecCL's consensus smart contract (CSC)
/// @notice Takes every participant's signed scores for the others once per round and elects the
///         round's `M` candidates by the multi-winner Borda rule, so no server can pick them.
/// @dev The Borda rule, exactly as `seccl.election.borda_tally` specifies it:
///      - Each voter ranks the other participants by its scores, highest first; equal scores
///        rank the lower participant index first. The top `M` get `M, M-1, ..., 1` points.
///      - A participant's total is the sum of the points the other voters gave it.
///      - The candidates are the `M` participants with the highest totals; equal totals elect
///        the lower participant index first. With no ballot at all, nobody is elected.
///      The voter (through the server) supplies its top-`M` ranking; the contract verifies it
///      against the signed scores in O(n) instead of sorting on-chain.
contract Consensus {
    // ───────────────────────────── TYPES ─────────────────────────────

    /// @notice The lifecycle of one round's election. Packed in one storage slot.
    struct Election {
        uint64 deadline;
        uint16 ballots;
        bool opened;
        bool tallied;
    }

    // ───────────────────────────── CONSTANTS ─────────────────────────────

    /// @dev The canonical encoding of an evaluation message (its digest is what the voter signs):
    ///      abi.encodePacked(MAGIC, VERSION, KIND_EVALUATION, round, voter, scores).
    bytes4 private constant MAGIC = "SCCL";
    uint8 private constant VERSION = 1;
    uint8 private constant KIND_EVALUATION = uint8(BulletinBoard.Kind.Evaluation);

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice The election of `round` was opened; ballots are taken until `deadline` (unix time).
    event ElectionOpened(uint64 indexed round, uint64 deadline);

    /// @notice `voter`'s signed `scores` (parts per million, by participant index) and its top-M
    ///         `ranking` were counted in `round`; `digest` is its evaluation message's digest.
    event ScoresSubmitted(
        uint64 indexed round, address indexed voter, bytes32 digest, uint32[] scores, uint16[] ranking
    );

    /// @notice The election of `round` elected `candidates` (participant indices, best first)
    ///         from `ballots` ballots.
    event CandidatesElected(uint64 indexed round, uint16[] candidates, uint16 ballots);

    // ───────────────────────────── ERRORS ─────────────────────────────

    /// @notice Only the session's server may open elections and relay ballots.
    error ConsensusUnauthorizedRelay(address caller);
    /// @notice `candidates` must be between 1 and the number of participants minus one.
    error ConsensusInvalidCandidateCount(uint256 candidates, uint256 participants);
    /// @notice Elections open one after another; `requested` is not the next one.
    error ConsensusInvalidRound(uint64 requested, uint64 expected);
    /// @notice The election of `round` has not been opened.
    error ConsensusElectionNotOpen(uint64 round);
    /// @notice The election of `round` has already been tallied.
    error ConsensusElectionClosed(uint64 round);
    /// @notice The election of `round` stopped taking ballots at `deadline`.
    error ConsensusDeadlinePassed(uint64 round, uint64 deadline);
    /// @notice `voter` is not a registered participant.
    error ConsensusUnknownVoter(address voter);
    /// @notice `voter` has already voted in `round`.
    error ConsensusAlreadyVoted(uint64 round, address voter);
    /// @notice A list had `actual` entries where `expected` were due.
    error ConsensusWrongLength(uint256 expected, uint256 actual);
    /// @notice `voter` scored or ranked itself.
    error ConsensusSelfScore(uint64 round, address voter);
    /// @notice The signature recovers to `signer`, not to `voter`.
    error ConsensusInvalidSignature(address voter, address signer);
    /// @notice The supplied ranking is not the voter's top-M by the tie rule, first wrong at `position`.
    error ConsensusInvalidRanking(uint256 position);
    /// @notice The election of `round` still waits for ballots (`ballots` of `expected`) until `deadline`.
    error ConsensusElectionStillOpen(uint64 round, uint16 ballots, uint256 expected, uint64 deadline);
    /// @notice The election of `round` has not been tallied yet.
    error ConsensusNotTallied(uint64 round);

    // ───────────────────────────── STORAGE ─────────────────────────────

    BulletinBoard private immutable _board;
    address private immutable _server;
    uint256 private immutable _participantCount;
    uint256 private immutable _candidates;
    uint64 private _latestRound;
    mapping(uint64 round => Election) private _elections;
    mapping(uint64 round => uint256 bitmap) private _voted;
    /// @dev Borda totals, sixteen 16-bit counters per word, so a ballot touches few slots.
    mapping(uint64 round => mapping(uint256 word => uint256 packed)) private _totals;
    mapping(uint64 round => uint16[] candidates) private _elected;

    // ───────────────────────────── LOGIC ─────────────────────────────

    /// @notice Elects `candidates` participants per round for the session of `board_`; the
    ///         board's server is this contract's server.
    constructor(BulletinBoard board_, uint256 candidates) {
        uint256 count = board_.participants().length;
        if (candidates == 0 || candidates >= count) {
            revert ConsensusInvalidCandidateCount(candidates, count);
        }
        _board = board_;
        _server = board_.server();
        _participantCount = count;
        _candidates = candidates;
    }

    /// @notice Opens the election of `round` (the next one, starting at 1) until `deadline`.
    function openElection(uint64 round, uint64 deadline) external {
        _onlyServer();
        uint64 expected = _latestRound + 1;
        if (round != expected) revert ConsensusInvalidRound(round, expected);
        _latestRound = round;
        _elections[round] = Election({deadline: deadline, ballots: 0, opened: true, tallied: false});
        emit ElectionOpened(round, deadline);
    }

    /// @notice Counts `voter`'s ballot of `round`: its `scores` for every participant (its own
    ///         entry zero) and its top-M `ranking`, signed by the voter as its evaluation message.
    function submitScores(
        uint64 round,
        address voter,
        uint32[] calldata scores,
        uint16[] calldata ranking,
        bytes calldata signature
    ) external {
        _onlyServer();
        Election storage election = _openElection(round);
        if (block.timestamp > election.deadline) revert ConsensusDeadlinePassed(round, election.deadline);
        (bool registered, uint256 self) = _board.participantIndex(voter);
        if (!registered) revert ConsensusUnknownVoter(voter);
        uint256 votedBitmap = _voted[round];
        if (votedBitmap & (1 << self) != 0) revert ConsensusAlreadyVoted(round, voter);
        if (scores.length != _participantCount) revert ConsensusWrongLength(_participantCount, scores.length);
        if (ranking.length != _candidates) revert ConsensusWrongLength(_candidates, ranking.length);
        if (scores[self] != 0) revert ConsensusSelfScore(round, voter);

        bytes32 digest = _verifySignature(round, voter, scores, signature);
        _countBallot(round, voter, self, scores, ranking);
        _voted[round] = votedBitmap | (1 << self);
        election.ballots += 1;
        emit ScoresSubmitted(round, voter, digest, scores, ranking);
    }

    /// @notice Elects the candidates of `round` once every participant has voted or the deadline
    ///         has passed. Anyone may call it, so a server cannot hold an election open.
    function tally(uint64 round) external returns (uint16[] memory candidates) {
        Election storage election = _openElection(round);
        uint16 ballots = election.ballots;
        if (ballots < _participantCount && block.timestamp <= election.deadline) {
            revert ConsensusElectionStillOpen(round, ballots, _participantCount, election.deadline);
        }
        candidates = ballots == 0 ? new uint16[](0) : _topCandidates(round);
        election.tallied = true;
        _elected[round] = candidates;
        emit CandidatesElected(round, candidates, ballots);
    }

    // ───────────────────────────── VIEWS ─────────────────────────────

    /// @notice The bulletin board of this session.
    function board() external view returns (BulletinBoard) {
        return _board;
    }

    /// @notice How many candidates each election elects (M).
    function candidateCount() external view returns (uint256) {
        return _candidates;
    }

    /// @notice The latest round whose election was opened (0 before the first).
    function latestRound() external view returns (uint64) {
        return _latestRound;
    }

    /// @notice The state of the election of `round`.
    function electionOf(uint64 round) external view returns (Election memory) {
        return _elections[round];
    }

    /// @notice Whether `voter`'s ballot of `round` was counted.
    function hasVoted(uint64 round, address voter) external view returns (bool) {
        (bool registered, uint256 index) = _board.participantIndex(voter);
        return registered && _voted[round] & (1 << index) != 0;
    }

    /// @notice The Borda totals of `round` so far, by participant index.
    function totalsOf(uint64 round) external view returns (uint256[] memory totals) {
        totals = new uint256[](_participantCount);
        for (uint256 i = 0; i < _participantCount; ++i) {
            totals[i] = _totalOf(round, i);
        }
    }

    /// @notice The candidates elected in `round`, best first.
    function electedOf(uint64 round) external view returns (uint16[] memory) {
        if (!_elections[round].tallied) revert ConsensusNotTallied(round);
        return _elected[round];
    }

    // ───────────────────────────── INTERNAL ─────────────────────────────

    /// @dev The digest of `voter`'s evaluation message; reverts unless `signature` is the voter's.
    function _verifySignature(uint64 round, address voter, uint32[] calldata scores, bytes calldata signature)
        private
        view
        returns (bytes32 digest)
    {
        digest = sha256(abi.encodePacked(MAGIC, VERSION, KIND_EVALUATION, round, voter, scores));
        address signer = SecclSigning.recoverSigner(
            SecclSigning.signedHash(address(_board), round, KIND_EVALUATION, digest), signature
        );
        if (signer != voter) revert ConsensusInvalidSignature(voter, signer);
    }

    /// @dev Verifies that `ranking` is the voter's top-M by (score desc, index asc) in O(n) and
    ///      adds its positional points M, M-1, ..., 1 to the round's totals.
    function _countBallot(
        uint64 round,
        address voter,
        uint256 self,
        uint32[] calldata scores,
        uint16[] calldata ranking
    ) private {
        uint256 m = _candidates;
        uint256 n = _participantCount;
        uint256 ranked;
        for (uint256 k = 0; k < m; ++k) {
            uint256 c = ranking[k];
            if (c >= n || (ranked & (1 << c)) != 0) revert ConsensusInvalidRanking(k);
            if (c == self) revert ConsensusSelfScore(round, voter);
            if (k > 0 && !_ranksBefore(scores, ranking[k - 1], c)) revert ConsensusInvalidRanking(k);
            ranked |= 1 << c;
            _addPoints(round, c, m - k);
        }
        uint256 last = ranking[m - 1];
        for (uint256 j = 0; j < n; ++j) {
            if (j == self || (ranked & (1 << j)) != 0) continue;
            if (!_ranksBefore(scores, last, j)) revert ConsensusInvalidRanking(m);
        }
    }

    /// @dev Whether participant `a` ranks strictly before `b`: higher score, or equal and lower index.
    function _ranksBefore(uint32[] calldata scores, uint256 a, uint256 b) private pure returns (bool) {
        return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    }

    function _addPoints(uint64 round, uint256 index, uint256 points) private {
        // Cannot overflow 16 bits: at most 255 voters give at most 255 points each.
        _totals[round][index >> 4] += points << ((index & 15) << 4);
    }

    function _totalOf(uint64 round, uint256 index) private view returns (uint256) {
        return (_totals[round][index >> 4] >> ((index & 15) << 4)) & 0xffff;
    }

    /// @dev The M best totals, best first; equal totals prefer the lower index. O(n·M) in memory.
    function _topCandidates(uint64 round) private view returns (uint16[] memory top) {
        uint256 n = _participantCount;
        uint256 m = _candidates;
        uint256[] memory totals = new uint256[](n);
        uint256 word;
        for (uint256 i = 0; i < n; ++i) {
            if (i & 15 == 0) word = _totals[round][i >> 4];
            totals[i] = (word >> ((i & 15) << 4)) & 0xffff;
        }
        top = new uint16[](m);
        uint256 picked;
        for (uint256 k = 0; k < m; ++k) {
            uint256 best = type(uint256).max;
            for (uint256 j = 0; j < n; ++j) {
                if ((picked & (1 << j)) != 0) continue;
                // Strictly greater: scanning upwards keeps the lower index on a tie.
                if (best == type(uint256).max || totals[j] > totals[best]) best = j;
            }
            picked |= 1 << best;
            top[k] = uint16(best);
        }
    }

    function _openElection(uint64 round) private view returns (Election storage election) {
        election = _elections[round];
        if (!election.opened) revert ConsensusElectionNotOpen(round);
        if (election.tallied) revert ConsensusElectionClosed(round);
    }

    function _onlyServer() private view {
        if (msg.sender != _server) revert ConsensusUnauthorizedRelay(msg.sender);
    }
}
