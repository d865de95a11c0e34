// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {BulletinBoard, IElectionRecord} from "./BulletinBoard.sol";
import {SecclSigning} from "./SecclSigning.sol";

/// @title Consensus — SecCL's consensus smart contract (CSC)
/// @notice Counts every participant's signed scores for the others once per round and elects the
///         round's candidates by the multi-winner Borda rule, so no server can pick them. Anyone
///         may relay a ballot (the voter's signature proves it) and anyone may tally once the
///         ballot phase, fixed at deployment, has passed.
/// @dev The rule, exactly as `seccl.election.borda_tally` specifies it:
///      - A score is in parts per million, or ABSTAIN (2^32-1): the voter could not assess that
///        participant (its own entry must be ABSTAIN). Only participants whose update of the
///        round is on the board are eligible; entries for the others count as abstentions.
///      - Each voter ranks the eligible participants it scored, higher score first; equal scores
///        rank the lower tie key first ({SecclSigning-tieKey}: a per-round order from the
///        session's tie seed). Its top M (or all of them, if fewer) get M, M-1, ... points.
///      - A participant's assessors are the ballots of the other voters that did not abstain on
///        it; its mean is its points divided by its assessors. Abstaining is thus neutral: it
///        neither rewards nor punishes.
///      - Electable are the eligible participants assessed by more than half of the other
///        voters' ballots: a server that keeps updates from most voters (silently, so nobody can
///        prove it) leaves them unelectable instead of electing by the tie order or by a few
///        colluders' votes.
///      - The candidates are the min(M, electable) electable participants with the highest
///        means; equal means elect the lower tie key first. With no ballot, nobody is elected.
///      The voter supplies its top-M ranking; the contract verifies it in O(n) instead of sorting.
contract Consensus is IElectionRecord {
    // ───────────────────────────── TYPES ─────────────────────────────

    /// @notice One round's election. Packed in one storage slot.
    struct Election {
        uint16 ballots;
        bool tallied;
    }

    // ───────────────────────────── CONSTANTS ─────────────────────────────

    /// @notice The score entry of a participant the voter does not assess.
    uint32 public constant ABSTAIN = type(uint32).max;
    /// @notice The largest score: macro-F1 of 1, in parts per million.
    uint32 public constant MAX_SCORE = 1_000_000;

    /// @dev The canonical encoding of an evaluation message (its digest is what the voter signs):
    ///      abi.encodePacked(MAGIC, VERSION, KIND_EVALUATION, round, voter, scores).
    bytes4 private constant MAGIC = "SCCL";
    uint8 private constant VERSION = 2;
    uint8 private constant KIND_EVALUATION = uint8(BulletinBoard.Kind.Evaluation);

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice `voter`'s signed `scores` (by participant index) and its top-M `ranking` were
    ///         counted in `round`; `digest` is its evaluation message's digest.
    event ScoresSubmitted(
        uint64 indexed round, address indexed voter, bytes32 digest, uint32[] scores, uint16[] ranking
    );

    /// @notice The election of `round` elected `candidates` (participant indices, best first)
    ///         from `ballots` ballots.
    event CandidatesElected(uint64 indexed round, uint16[] candidates, uint16 ballots);

    // ───────────────────────────── ERRORS ─────────────────────────────

    /// @notice `candidates` must be between 1 and the number of participants minus one.
    error ConsensusInvalidCandidateCount(uint256 candidates, uint256 participants);
    /// @notice The board at `board` names `named` as its consensus contract, not this one.
    error ConsensusBoardMismatch(address board, address named);
    /// @notice `round` has not been opened on the board.
    error ConsensusRoundNotOpen(uint64 round);
    /// @notice The ballots of `round` open when every update is in or at `updateDeadline`.
    error ConsensusBallotPhaseNotOpen(uint64 round, uint64 updateDeadline);
    /// @notice The ballot phase of `round` ended at `deadline`.
    error ConsensusBallotPhaseOver(uint64 round, uint64 deadline);
    /// @notice The election of `round` has already been tallied.
    error ConsensusElectionClosed(uint64 round);
    /// @notice `voter` is not a registered participant.
    error ConsensusUnknownVoter(address voter);
    /// @notice `voter` has already voted in `round`.
    error ConsensusAlreadyVoted(uint64 round, address voter);
    /// @notice A list had `actual` entries where `expected` were due.
    error ConsensusWrongLength(uint256 expected, uint256 actual);
    /// @notice `voter` scored or ranked itself.
    error ConsensusSelfScore(uint64 round, address voter);
    /// @notice The score at `position` is neither in [0, MAX_SCORE] nor ABSTAIN.
    error ConsensusInvalidScore(uint256 position, uint32 score);
    /// @notice The signature recovers to `signer`, not to `voter`.
    error ConsensusInvalidSignature(address voter, address signer);
    /// @notice The supplied ranking is not the voter's top-M by the rule, first wrong at `position`.
    error ConsensusInvalidRanking(uint256 position);
    /// @notice The election of `round` still waits for ballots (`ballots` of `expected`) until `deadline`.
    error ConsensusElectionStillOpen(uint64 round, uint16 ballots, uint256 expected, uint64 deadline);
    /// @notice The election of `round` has not been tallied yet.
    error ConsensusNotTallied(uint64 round);

    // ───────────────────────────── STORAGE ─────────────────────────────

    BulletinBoard private immutable _board;
    uint256 private immutable _participantCount;
    uint256 private immutable _candidates;
    bytes32 private immutable _nonce;
    bytes32 private immutable _tieSeed;
    mapping(uint64 round => Election) private _elections;
    mapping(uint64 round => uint256 bitmap) private _voted;
    /// @dev Borda points and abstentions, sixteen 16-bit counters per word, so a ballot touches
    ///      few slots (abstentions are rare, and cost nothing when absent).
    mapping(uint64 round => mapping(uint256 word => uint256 packed)) private _points;
    mapping(uint64 round => mapping(uint256 word => uint256 packed)) private _abstentions;
    mapping(uint64 round => uint16[] candidates) private _elected;

    // ───────────────────────────── LOGIC ─────────────────────────────

    /// @notice Elects `candidates` participants per round for the session of `board_`, which
    ///         must name this contract as its consensus contract.
    constructor(BulletinBoard board_, uint256 candidates) {
        address named = board_.consensus();
        if (named != address(this)) revert ConsensusBoardMismatch(address(board_), named);
        uint256 count = board_.participantCount();
        if (candidates == 0 || candidates >= count) {
            revert ConsensusInvalidCandidateCount(candidates, count);
        }
        _board = board_;
        _participantCount = count;
        _candidates = candidates;
        _nonce = board_.nonce();
        _tieSeed = board_.tieSeed();
    }

    /// @notice Counts `voter`'s ballot of `round`: its `scores` for every participant and its
    ///         top-M `ranking`, signed by the voter as its evaluation message. Anyone may relay.
    function submitScores(
        uint64 round,
        address voter,
        uint32[] calldata scores,
        uint16[] calldata ranking,
        bytes calldata signature
    ) external {
        uint256 eligible = _ballotPhase(round);
        (bool registered, uint256 self) = _board.participantIndex(voter);
        if (!registered) revert ConsensusUnknownVoter(voter);
        if (_voted[round] & (1 << self) != 0) revert ConsensusAlreadyVoted(round, voter);
        if (scores.length != _participantCount) revert ConsensusWrongLength(_participantCount, scores.length);
        if (scores[self] != ABSTAIN) revert ConsensusSelfScore(round, voter);

        bytes32 digest = _verifySignature(round, voter, scores, signature);
        _countBallot(round, voter, self, scores, ranking, eligible);
        _voted[round] |= 1 << self;
        _elections[round].ballots += 1;
        emit ScoresSubmitted(round, voter, digest, scores, ranking);
    }

    /// @notice Elects the candidates of `round` once every participant has voted or the ballot
    ///         phase has ended. Anyone may call it, so no server can hold an election open.
    function tally(uint64 round) external returns (uint16[] memory candidates) {
        Election storage election = _elections[round];
        if (election.tallied) revert ConsensusElectionClosed(round);
        BulletinBoard.RoundInfo memory info = _board.roundInfo(round);
        if (info.openedAt == 0) revert ConsensusRoundNotOpen(round);
        uint16 ballots = election.ballots;
        if (ballots < _participantCount && block.timestamp <= info.ballotDeadline) {
            revert ConsensusElectionStillOpen(round, ballots, _participantCount, info.ballotDeadline);
        }
        candidates = ballots == 0 ? new uint16[](0) : _topCandidates(round, ballots, info.updateBitmap);
        election.tallied = true;
        _elected[round] = candidates;
        emit CandidatesElected(round, candidates, ballots);
    }

    // ───────────────────────────── VIEWS ─────────────────────────────

    /// @notice The bulletin board of this session.
    function board() external view returns (BulletinBoard) {
        return _board;
    }

    /// @notice How many candidates each election elects at most (M).
    function candidateCount() external view returns (uint256) {
        return _candidates;
    }

    /// @notice How many participants this contract counts ballots for (the board's, at deployment).
    /// @dev This and the next two views expose the immutables copied from the board, so that a
    ///      participant checking the code (with immutables masked) can check their values too.
    function participantCount() external view returns (uint256) {
        return _participantCount;
    }

    /// @notice The session nonce this contract checks ballot signatures with (the board's).
    function nonce() external view returns (bytes32) {
        return _nonce;
    }

    /// @notice The tie seed this contract breaks ties with (the board's).
    function tieSeed() external view returns (bytes32) {
        return _tieSeed;
    }

    /// @notice Whether the election of `round` has been tallied.
    function isTallied(uint64 round) external view returns (bool) {
        return _elections[round].tallied;
    }

    /// @notice How many ballots `round` has counted, and whether it was tallied.
    function electionOf(uint64 round) external view returns (Election memory) {
        return _elections[round];
    }

    /// @notice Who has voted in `round`: bit i set for participant i.
    function votedBitmap(uint64 round) external view returns (uint256) {
        return _voted[round];
    }

    /// @notice Whether `voter`'s ballot of `round` was counted.
    function hasVoted(uint64 round, address voter) external view returns (bool) {
        (bool registered, uint256 index) = _board.participantIndex(voter);
        return registered && _voted[round] & (1 << index) != 0;
    }

    /// @notice The Borda points and abstentions of `round` so far, by participant index.
    function totalsOf(uint64 round) external view returns (uint256[] memory points, uint256[] memory abstentions) {
        points = new uint256[](_participantCount);
        abstentions = new uint256[](_participantCount);
        for (uint256 i = 0; i < _participantCount; ++i) {
            points[i] = _lane(_points[round][i >> 4], i);
            abstentions[i] = _lane(_abstentions[round][i >> 4], i);
        }
    }

    /// @notice The candidates elected in `round`, best first.
    function electedOf(uint64 round) external view returns (uint16[] memory) {
        if (!_elections[round].tallied) revert ConsensusNotTallied(round);
        return _elected[round];
    }

    // ───────────────────────────── INTERNAL ─────────────────────────────

    /// @dev Reverts unless `round` takes ballots now; returns the bitmap of its eligible participants.
    function _ballotPhase(uint64 round) private view returns (uint256 eligible) {
        if (_elections[round].tallied) revert ConsensusElectionClosed(round);
        BulletinBoard.RoundInfo memory info = _board.roundInfo(round);
        if (info.openedAt == 0) revert ConsensusRoundNotOpen(round);
        if (info.updates < _participantCount && block.timestamp <= info.updateDeadline) {
            revert ConsensusBallotPhaseNotOpen(round, info.updateDeadline);
        }
        if (block.timestamp > info.ballotDeadline) revert ConsensusBallotPhaseOver(round, info.ballotDeadline);
        return info.updateBitmap;
    }

    /// @dev The digest of `voter`'s evaluation message; reverts unless `signature` is the voter's.
    function _verifySignature(uint64 round, address voter, uint32[] calldata scores, bytes calldata signature)
        private
        view
        returns (bytes32 digest)
    {
        digest = sha256(abi.encodePacked(MAGIC, VERSION, KIND_EVALUATION, round, voter, scores));
        address signer = SecclSigning.recoverSigner(
            SecclSigning.signedHash(address(_board), address(this), _nonce, round, KIND_EVALUATION, digest),
            signature
        );
        if (signer != voter) revert ConsensusInvalidSignature(voter, signer);
    }

    /// @dev Verifies in O(n) that `ranking` is the voter's top-M of the eligible participants it
    ///      scored, adds the positional points M, M-1, ..., and counts its abstentions.
    function _countBallot(
        uint64 round,
        address voter,
        uint256 self,
        uint32[] calldata scores,
        uint16[] calldata ranking,
        uint256 eligible
    ) private {
        uint256 ranked = _addRankingPoints(round, voter, self, scores, ranking, eligible);
        uint256 last = ranking.length == 0 ? self : ranking[ranking.length - 1];
        uint256 rankable;
        for (uint256 j = 0; j < _participantCount; ++j) {
            uint32 score = scores[j];
            if (score > MAX_SCORE && score != ABSTAIN) revert ConsensusInvalidScore(j, score);
            if (j == self || (eligible & (1 << j)) == 0) continue;
            if (score == ABSTAIN) {
                // Cannot overflow 16 bits: at most 255 voters abstain once each.
                _abstentions[round][j >> 4] += 1 << ((j & 15) << 4);
                continue;
            }
            rankable += 1;
            if ((ranked & (1 << j)) == 0 && last != self && !_ranksBefore(scores, round, last, j)) {
                revert ConsensusInvalidRanking(ranking.length);
            }
        }
        uint256 expected = rankable < _candidates ? rankable : _candidates;
        if (ranking.length != expected) revert ConsensusWrongLength(expected, ranking.length);
    }

    /// @dev Checks each ranked entry (in range, once, not the voter, scored, eligible, in order)
    ///      and adds its points; returns the bitmap of the ranked participants.
    function _addRankingPoints(
        uint64 round,
        address voter,
        uint256 self,
        uint32[] calldata scores,
        uint16[] calldata ranking,
        uint256 eligible
    ) private returns (uint256 ranked) {
        if (ranking.length > _candidates) revert ConsensusWrongLength(_candidates, ranking.length);
        for (uint256 k = 0; k < ranking.length; ++k) {
            uint256 c = ranking[k];
            if (c >= _participantCount || (ranked & (1 << c)) != 0) revert ConsensusInvalidRanking(k);
            if (c == self) revert ConsensusSelfScore(round, voter);
            if (scores[c] == ABSTAIN || (eligible & (1 << c)) == 0) revert ConsensusInvalidRanking(k);
            if (k > 0 && !_ranksBefore(scores, round, ranking[k - 1], c)) revert ConsensusInvalidRanking(k);
            ranked |= 1 << c;
            _points[round][c >> 4] += (_candidates - k) << ((c & 15) << 4);
        }
    }

    /// @dev Whether participant `a` ranks strictly before `b`: higher score, or equal and lower tie key.
    function _ranksBefore(uint32[] calldata scores, uint64 round, uint256 a, uint256 b) private view returns (bool) {
        if (scores[a] != scores[b]) return scores[a] > scores[b];
        return SecclSigning.tieKey(_tieSeed, round, a) < SecclSigning.tieKey(_tieSeed, round, b);
    }

    /// @dev The best min(M, electable) electable participants by mean points, best first; equal
    ///      means prefer the lower tie key. Means compare exactly by cross-multiplication. O(n·M).
    function _topCandidates(uint64 round, uint256 ballots, uint256 eligible)
        private
        view
        returns (uint16[] memory top)
    {
        uint256 n = _participantCount;
        uint256[] memory points = new uint256[](n);
        uint256[] memory assessors = new uint256[](n);
        uint256[] memory keys = new uint256[](n);
        uint256 count;
        uint256 electable;
        for (uint256 i = 0; i < n; ++i) {
            if ((eligible & (1 << i)) == 0) continue;
            uint256 others = ballots - ((_voted[round] >> i) & 1);
            uint256 assessed = others - _lane(_abstentions[round][i >> 4], i);
            if (2 * assessed <= others) continue; // assessed by half of the others or fewer
            electable |= 1 << i;
            count += 1;
            points[i] = _lane(_points[round][i >> 4], i);
            assessors[i] = assessed;
            keys[i] = SecclSigning.tieKey(_tieSeed, round, i);
        }
        uint256 m = count < _candidates ? count : _candidates;
        top = new uint16[](m);
        uint256 picked;
        for (uint256 k = 0; k < m; ++k) {
            uint256 best = type(uint256).max;
            for (uint256 j = 0; j < n; ++j) {
                if ((electable & (1 << j)) == 0 || (picked & (1 << j)) != 0) continue;
                if (best == type(uint256).max) {
                    best = j;
                    continue;
                }
                uint256 mine = points[j] * assessors[best];
                uint256 theirs = points[best] * assessors[j];
                if (mine > theirs || (mine == theirs && keys[j] < keys[best])) best = j;
            }
            picked |= 1 << best;
            top[k] = uint16(best);
        }
    }

    function _lane(uint256 word, uint256 index) private pure returns (uint256) {
        return (word >> ((index & 15) << 4)) & 0xffff;
    }
}
