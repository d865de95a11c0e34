// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Bitmaps} from "./Bitmaps.sol";
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
///        round was revealed on the board and not proven invalid are eligible; entries for the
///        others count as abstentions.
///      - Each voter ranks the eligible participants it scored, higher score first; equal scores
///        rank the lower tie key first ({SecclSigning-tieKey}: a per-round order from the
///        round's tie seed, which the board derives from every revealed update's salt). Its top
///        M (or all of them, if fewer) get M, M-1, ... points.
///      - A participant's assessors are the ballots of the other voters that did not abstain on
///        it; its mean is its points divided by its assessors. Abstaining is thus neutral: it
///        neither rewards nor punishes.
///      - Electable are the eligible participants assessed by more than half of the other
///        voters' ballots, so a few colluders' votes alone never elect anybody.
///      - The candidates are the min(M, electable) electable participants with the highest
///        means; equal means elect the lower tie key first. With no ballot, nobody is elected.
///      The voter supplies its top-M ranking; the contract verifies it in O(n) instead of sorting.
///      Storage holds only what the contract itself reads again (who voted, the packed totals, the
///      election's result); each ballot's scores and ranking are recorded once, in its event.
contract Consensus is IElectionRecord {
    // ───────────────────────────── TYPES ─────────────────────────────

    /// @dev What counting one ballot needs besides the ballot: its round, the round's tie seed,
    ///      the voter's index and the round's eligible participants.
    struct BallotContext {
        uint64 round;
        bytes32 seed;
        uint256 self;
        uint256 eligible;
    }

    /// @notice One round's election, as {electionOf} reports it (derived, not stored as such).
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
    ///      abi.encodePacked(MAGIC, VERSION, KIND_EVALUATION, round, voter, scores), where `scores`
    ///      holds one big-endian uint32 (SCORE_BYTES bytes) per participant, by index.
    bytes4 private constant MAGIC = "SCCL";
    uint8 private constant VERSION = 4;
    uint256 private constant SCORE_BYTES = 4;
    uint256 private constant MASK64 = type(uint64).max;
    uint8 private constant KIND_EVALUATION = uint8(BulletinBoard.Kind.Evaluation);

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice `voter`'s signed `scores` (one big-endian uint32 per participant, by index) and its
    ///         top-M `ranking` (one byte per participant index, best first) were counted in
    ///         `round`; `digest` is its evaluation message's digest. This is the ballot's record.
    event ScoresSubmitted(uint64 indexed round, address indexed voter, bytes32 digest, bytes scores, bytes ranking);

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
    /// @notice The ballots of `round` open when every committed update is revealed, or at
    ///         `revealDeadline` (and never before the commitments have closed).
    error ConsensusBallotPhaseNotOpen(uint64 round, uint64 revealDeadline);
    /// @notice The ballot phase of `round` ended at `deadline`.
    error ConsensusBallotPhaseOver(uint64 round, uint64 deadline);
    /// @notice The election of `round` has already been tallied.
    error ConsensusElectionClosed(uint64 round);
    /// @notice `voter` is not a registered participant.
    error ConsensusUnknownVoter(address voter);
    /// @notice `voter` has already voted in `round`.
    error ConsensusAlreadyVoted(uint64 round, address voter);
    /// @notice A list had `actual` bytes where `expected` were due (scores take 4 bytes each, ranks 1).
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
    uint256 private immutable _counterBits;
    mapping(uint64 round => uint256 bitmap) private _voted;
    /// @dev Borda points and abstentions, packed counters (see {_lanePosition}), so a ballot
    ///      touches few slots (abstentions are rare, and cost nothing when absent).
    mapping(uint64 round => mapping(uint256 word => uint256 packed)) private _points;
    mapping(uint64 round => mapping(uint256 word => uint256 packed)) private _abstentions;
    /// @dev Empty until the round is tallied; then the number of candidates elected, followed by
    ///      their indices, one byte each, best first (one slot for up to 30 candidates).
    mapping(uint64 round => bytes record) private _elected;

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
        _counterBits = candidates * (count - 1) < 256 ? 8 : 16;
    }

    /// @notice Counts `voter`'s ballot of `round`: its `scores` for every participant (the body of
    ///         its evaluation message: one big-endian uint32 each, by index) and its top-M
    ///         `ranking` (participant indices, one byte each, best first), signed by the voter as
    ///         its evaluation message. Anyone may relay.
    /// @dev A ballot after the tally is refused as a second ballot or as late: a tally happens only
    ///      once every participant has voted or the ballot phase is over.
    function submitScores(
        uint64 round,
        address voter,
        bytes calldata scores,
        bytes calldata ranking,
        bytes calldata signature
    ) external {
        (uint256 eligible, bytes32 seed) = _ballotPhase(round);
        (bool registered, uint256 self) = _board.participantIndex(voter);
        if (!registered) revert ConsensusUnknownVoter(voter);
        if (_voted[round] & (1 << self) != 0) revert ConsensusAlreadyVoted(round, voter);
        if (scores.length != SCORE_BYTES * _participantCount) {
            revert ConsensusWrongLength(SCORE_BYTES * _participantCount, scores.length);
        }
        if (_score(scores, self) != ABSTAIN) revert ConsensusSelfScore(round, voter);

        bytes32 digest = _verifySignature(round, voter, scores, signature);
        _countBallot(BallotContext(round, seed, self, eligible), voter, scores, ranking);
        _voted[round] |= 1 << self;
        emit ScoresSubmitted(round, voter, digest, scores, ranking);
    }

    /// @notice Elects the candidates of `round` once every participant has voted or the ballot
    ///         phase has ended. Anyone may call it, so no server can hold an election open.
    function tally(uint64 round) external returns (uint16[] memory candidates) {
        if (_elected[round].length != 0) revert ConsensusElectionClosed(round);
        BulletinBoard.RoundInfo memory info = _board.roundInfo(round);
        if (info.openedAt == 0) revert ConsensusRoundNotOpen(round);
        uint256 voted = _voted[round];
        uint16 ballots = uint16(Bitmaps.count(voted));
        if (ballots < _participantCount && block.timestamp <= info.ballotDeadline) {
            revert ConsensusElectionStillOpen(round, ballots, _participantCount, info.ballotDeadline);
        }
        uint256 eligible = info.revealBitmap & ~info.invalidBitmap;
        candidates =
            ballots == 0 ? new uint16[](0) : _topCandidates(round, _board.tieSeedOf(round), ballots, eligible);
        bytes memory record = new bytes(candidates.length + 1);
        record[0] = bytes1(uint8(candidates.length));
        for (uint256 k = 0; k < candidates.length; ++k) {
            record[k + 1] = bytes1(uint8(candidates[k]));
        }
        _elected[round] = record;
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
    /// @dev This, the next two views and {counterBits} expose the immutables derived from the
    ///      board, so that a participant checking the code (with immutables masked) can check
    ///      their values too.
    function participantCount() external view returns (uint256) {
        return _participantCount;
    }

    /// @notice The session nonce this contract checks ballot signatures with (the board's).
    function nonce() external view returns (bytes32) {
        return _nonce;
    }

    /// @notice The width of each Borda counter, in bits: 8 when no total can reach 256
    ///         (M·(N-1) < 256), else 16 (which holds 255·255).
    function counterBits() external view returns (uint256) {
        return _counterBits;
    }

    /// @notice Whether the election of `round` has been tallied.
    function isTallied(uint64 round) public view returns (bool) {
        return _elected[round].length != 0;
    }

    /// @notice How many ballots `round` has counted, and whether it was tallied.
    function electionOf(uint64 round) external view returns (Election memory) {
        return Election({ballots: uint16(Bitmaps.count(_voted[round])), tallied: isTallied(round)});
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
            (uint256 word, uint256 shift) = _lanePosition(i);
            points[i] = _lane(_points[round][word], shift);
            abstentions[i] = _lane(_abstentions[round][word], shift);
        }
    }

    /// @notice The candidates elected in `round`, best first.
    function electedOf(uint64 round) external view returns (uint16[] memory candidates) {
        bytes memory record = _elected[round];
        if (record.length == 0) revert ConsensusNotTallied(round);
        candidates = new uint16[](uint8(record[0]));
        for (uint256 k = 0; k < candidates.length; ++k) {
            candidates[k] = uint8(record[k + 1]);
        }
    }

    // ───────────────────────────── INTERNAL ─────────────────────────────

    /// @dev Reverts unless `round` takes ballots now; returns the bitmap of its eligible
    ///      participants (revealed, not proven invalid) and the round's tie seed.
    function _ballotPhase(uint64 round) private view returns (uint256 eligible, bytes32 seed) {
        BulletinBoard.RoundInfo memory info = _board.roundInfo(round);
        if (info.openedAt == 0) revert ConsensusRoundNotOpen(round);
        bool committed = info.updates == _participantCount || block.timestamp > info.updateDeadline;
        bool revealed = committed && info.revealBitmap == info.updateBitmap;
        if (!revealed && block.timestamp <= info.revealDeadline) {
            revert ConsensusBallotPhaseNotOpen(round, info.revealDeadline);
        }
        if (block.timestamp > info.ballotDeadline) revert ConsensusBallotPhaseOver(round, info.ballotDeadline);
        return (info.revealBitmap & ~info.invalidBitmap, _board.tieSeedOf(round));
    }

    /// @dev The digest of `voter`'s evaluation message; reverts unless `signature` is the voter's.
    function _verifySignature(uint64 round, address voter, bytes calldata scores, bytes calldata signature)
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
    function _countBallot(BallotContext memory ballot, address voter, bytes calldata scores, bytes calldata ranking)
        private
    {
        uint256 ranked = _addRankingPoints(ballot, voter, scores, ranking);
        uint256 last = ranking.length == 0 ? ballot.self : uint8(ranking[ranking.length - 1]);
        uint256 rankable = _checkUnranked(ballot, scores, ranked, last);
        uint256 expected = rankable < _candidates ? rankable : _candidates;
        if (ranking.length != expected) revert ConsensusWrongLength(expected, ranking.length);
    }

    /// @dev Checks every score, counts the abstentions on eligible participants, and checks that
    ///      each eligible participant scored but not `ranked` ranks after `last`, the last one
    ///      ranked (the voter itself when none is: then the length check fails unless none is
    ///      rankable). Returns how many eligible participants other than the voter it scored.
    function _checkUnranked(BallotContext memory ballot, bytes calldata scores, uint256 ranked, uint256 last)
        private
        returns (uint256 rankable)
    {
        uint256 self = ballot.self;
        // Only a score at least the last ranked one's needs the full comparison.
        uint256 unranked = last == self ? 0 : ballot.eligible & ~ranked & ~(1 << self);
        uint32 floor = last == self ? 0 : _score(scores, last);
        uint256 abstained;
        for (uint256 j = 0; j < _participantCount; ++j) {
            uint32 score = _score(scores, j);
            if (score == ABSTAIN) {
                abstained |= 1 << j;
                continue;
            }
            if (score > MAX_SCORE) revert ConsensusInvalidScore(j, score);
            if (score >= floor && (unranked >> j) & 1 != 0 && !_ranksBefore(scores, ballot, last, j)) {
                revert ConsensusInvalidRanking(Bitmaps.count(ranked));
            }
        }
        uint256 others = ballot.eligible & ~(1 << self);
        abstained &= others;
        for (uint256 j = 0; abstained >> j != 0; ++j) {
            if ((abstained >> j) & 1 != 0) _add(_abstentions[ballot.round], j, 1); // once per voter: at most N-1
        }
        return Bitmaps.count(others) - Bitmaps.count(abstained);
    }

    /// @dev Checks each ranked entry (in range, once, not the voter, scored, eligible, in order)
    ///      and adds its points; returns the bitmap of the ranked participants.
    function _addRankingPoints(
        BallotContext memory ballot,
        address voter,
        bytes calldata scores,
        bytes calldata ranking
    ) private returns (uint256 ranked) {
        if (ranking.length > _candidates) revert ConsensusWrongLength(_candidates, ranking.length);
        uint256 previous;
        for (uint256 k = 0; k < ranking.length; ++k) {
            uint256 c = uint8(ranking[k]);
            if (c >= _participantCount || (ranked & (1 << c)) != 0) revert ConsensusInvalidRanking(k);
            if (c == ballot.self) revert ConsensusSelfScore(ballot.round, voter);
            if (_score(scores, c) == ABSTAIN || (ballot.eligible & (1 << c)) == 0) revert ConsensusInvalidRanking(k);
            if (k > 0 && !_ranksBefore(scores, ballot, previous, c)) revert ConsensusInvalidRanking(k);
            previous = c;
            ranked |= 1 << c;
            _add(_points[ballot.round], c, _candidates - k); // at most N-1 voters give c at most M each
        }
    }

    /// @dev Whether participant `a` ranks strictly before `b`: higher score, or equal and lower tie key.
    function _ranksBefore(bytes calldata scores, BallotContext memory ballot, uint256 a, uint256 b)
        private
        pure
        returns (bool)
    {
        (uint32 sa, uint32 sb) = (_score(scores, a), _score(scores, b));
        if (sa != sb) return sa > sb;
        return SecclSigning.tieKey(ballot.seed, ballot.round, a) < SecclSigning.tieKey(ballot.seed, ballot.round, b);
    }

    /// @dev Participant `index`'s score in a ballot's `scores`; callers keep `index` below N, and
    ///      `submitScores` has checked that `scores` holds exactly N of them.
    function _score(bytes calldata scores, uint256 index) private pure returns (uint32 score) {
        assembly ("memory-safe") {
            score := shr(224, calldataload(add(scores.offset, mul(index, 4))))
        }
    }

    /// @dev The best min(M, electable) electable participants by mean points, best first; equal
    ///      means prefer the lower tie key. Means compare exactly by cross-multiplication. One pass
    ///      that keeps the best so far in order (an insertion): O(n·M) at worst, far less usually.
    function _topCandidates(uint64 round, bytes32 seed, uint256 ballots, uint256 eligible)
        private
        view
        returns (uint16[] memory top)
    {
        uint256 m = _candidates;
        uint256 voted = _voted[round];
        (uint256[] memory points, uint256[] memory abstentions) = _counters(round);
        uint256[] memory best = new uint256[](m); // entries (see _entry), best first
        uint256 filled;
        for (uint256 i = 0; i < _participantCount; ++i) {
            if ((eligible >> i) & 1 == 0) continue;
            uint256 entry = _entry(ballots, voted, i, points, abstentions);
            if (entry == 0) continue; // assessed by half of the others or fewer
            uint256 k = filled < m ? filled : m;
            while (k > 0 && _beats(round, seed, entry, best[k - 1])) {
                if (k < m) best[k] = best[k - 1];
                --k;
            }
            if (k < m) {
                best[k] = entry;
                if (filled < m) ++filled;
            }
        }
        top = new uint16[](filled);
        for (uint256 k = 0; k < filled; ++k) {
            top[k] = uint16(best[k] & MASK64);
        }
    }

    /// @dev The packed words of `round`'s points and abstentions, read once.
    function _counters(uint64 round) private view returns (uint256[] memory points, uint256[] memory abstentions) {
        (uint256 words,) = _lanePosition(_participantCount - 1);
        points = new uint256[](words + 1);
        abstentions = new uint256[](words + 1);
        for (uint256 w = 0; w <= words; ++w) {
            points[w] = _points[round][w];
            abstentions[w] = _abstentions[round][w];
        }
    }

    /// @dev Participant `i`'s standing, packed as points << 128 | assessors << 64 | i, or zero
    ///      unless it is electable (then it has at least one assessor, so the entry is not zero).
    function _entry(
        uint256 ballots,
        uint256 voted,
        uint256 i,
        uint256[] memory points,
        uint256[] memory abstentions
    ) private view returns (uint256) {
        uint256 others = ballots - ((voted >> i) & 1);
        (uint256 word, uint256 shift) = _lanePosition(i);
        uint256 assessed = others - _lane(abstentions[word], shift);
        if (2 * assessed <= others) return 0;
        return (_lane(points[word], shift) << 128) | (assessed << 64) | i;
    }

    /// @dev Whether entry `a` ranks before entry `b`: a higher mean, or an equal one and a lower tie key.
    function _beats(uint64 round, bytes32 seed, uint256 a, uint256 b) private pure returns (bool) {
        uint256 mine = (a >> 128) * ((b >> 64) & MASK64);
        uint256 theirs = (b >> 128) * ((a >> 64) & MASK64);
        if (mine != theirs) return mine > theirs;
        return SecclSigning.tieKey(seed, round, a & MASK64) < SecclSigning.tieKey(seed, round, b & MASK64);
    }

    /// @dev Where participant `index`'s counters sit: their word of `_points` and `_abstentions`,
    ///      and their bit offset in it: 32 counters a word at 8 bits, 16 at 16 bits ({counterBits}).
    function _lanePosition(uint256 index) private view returns (uint256 word, uint256 shift) {
        if (_counterBits == 8) return (index >> 5, (index & 31) << 3);
        return (index >> 4, (index & 15) << 4);
    }

    /// @dev Adds `amount` to participant `index`'s counter in `counters`; the caller keeps every
    ///      counter within its lane (see {_lanePosition}).
    function _add(mapping(uint256 word => uint256 packed) storage counters, uint256 index, uint256 amount) private {
        (uint256 word, uint256 shift) = _lanePosition(index);
        counters[word] += amount << shift;
    }

    /// @dev The counter at bit offset `shift` of `packed`.
    function _lane(uint256 packed, uint256 shift) private view returns (uint256) {
        return (packed >> shift) & ((1 << _counterBits) - 1);
    }
}
