// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {Bitmaps} from "./Bitmaps.sol";
import {BulletinBoard, IElectionRecord} from "./BulletinBoard.sol";
import {SecclSigning} from "./SecclSigning.sol";

/// @title GramGateConsensus — SecCL's consensus contract for the hardened `gram-gate` election
/// @notice Counts every participant's signed ballot once per round and elects the round's
///         candidates by the `gram-gate` rule, so that a colluding minority of the roster can
///         neither choose the round's filter nor lift its members into the elected set. The
///         filter itself (which updates are kept, which dropped) runs off chain: every party
///         computes it from the updates revealed on the board. Each ballot states its voter's
///         result in its entries; the contract counts how many ballots share each result and,
///         at the tally, counts the scores of the ballots that share the majority's.
///         Anyone may relay a ballot (the voter's signature proves it) and anyone may tally once
///         the ballot phase, fixed at deployment, has passed. The paper's Borda count stays in
///         {Consensus}; a session deploys one of the two.
/// @dev The rule, exactly as `seccl.election.gram_gate.gram_gate_tally` specifies it:
///      - A ballot has one uint32 entry per participant, by index: a score in parts per million
///        (at most MAX_SCORE) for a participant the voter's filter kept; DROPPED for one it
///        dropped (a near-duplicate or a coalition member: its author's ballot does not count);
///        REJECTED for one it left out (its author still votes); ABSTAIN for a participant that
///        is not eligible (no update revealed, or one proven invalid). The voter's own entry is
///        ABSTAIN when it was kept (it does not score itself), else DROPPED or REJECTED; ABSTAIN
///        when it is not eligible.
///      - The ballot's view is the pair (kept, dropped) of bitmaps its entries state, the voter's
///        own ABSTAIN reading as kept, masked by the eligible participants; its key is
///        `keccak256(abi.encode(kept, dropped))`.
///      - At the tally, the view a strict majority of the roster's ballots share (2·votes > N)
///        is the round's; with none, nobody is elected. Counted are the ballots with that view
///        whose voters it did not drop. Each kept participant's score is the upper median
///        (ascending, element len/2) of the counted ballots' entries for it, its own ballot
///        excluded; one without any such entry is skipped. The bar is the lower median of the
///        scored participants' medians minus max(ELECTION_MADS × their MAD, ELECTION_FLOOR) (the
///        MAD being the lower median of the absolute deviations from that median), at least zero.
///        Elected are, best first by median (equal medians by the lower tie key,
///        {SecclSigning-tieKey}), every scored participant whose median clears the bar, and at
///        least the min(M, scored) best: the ballots exclude the poor rather than choose a few.
///      Storage holds what the tally reads again: who voted, who voted for each view, each view's
///      bitmaps, the leading view, and each ballot's scores packed in 20-bit lanes (MAX_SCORE <
///      2^20), 12 a word; a ballot's entries are recorded in full once, in its event.
contract GramGateConsensus is IElectionRecord {
    // ───────────────────────────── TYPES ─────────────────────────────

    /// @notice One round's election, as {electionOf} reports it (derived, not stored as such).
    struct Election {
        uint16 ballots;
        bool tallied;
    }

    /// @dev A view's bitmaps: bit j of `kept` for a participant the filter kept, of `dropped` for
    ///      one it dropped.
    struct View {
        uint256 kept;
        uint256 dropped;
    }

    /// @dev What the tally's median count reads: the round, its tie seed, the kept participants
    ///      (still eligible), and the counted voters in ascending order.
    struct Count {
        uint64 round;
        bytes32 seed;
        uint256 kept;
        uint256[] voters;
    }

    // ───────────────────────────── CONSTANTS ─────────────────────────────

    /// @notice The entry for a participant that is not eligible (and the voter's own, when kept).
    uint32 public constant ABSTAIN = type(uint32).max;
    /// @notice The entry for a participant whose update the voter's filter dropped.
    uint32 public constant DROPPED = type(uint32).max - 1;
    /// @notice The entry for a participant whose update the voter's filter left out.
    uint32 public constant REJECTED = type(uint32).max - 2;
    /// @notice The largest score: macro-F1 of 1, in parts per million.
    uint32 public constant MAX_SCORE = 1_000_000;
    /// @notice The election's bar is this many median absolute deviations of the candidates'
    ///         medians below their median.
    uint256 public constant ELECTION_MADS = 3;
    /// @notice The least margin of the election's bar, in parts per million (0.05 of F1).
    uint256 public constant ELECTION_FLOOR = 50_000;

    /// @dev The canonical encoding of an evaluation message, as {Consensus} reads it:
    ///      abi.encodePacked(MAGIC, VERSION, KIND_EVALUATION, round, voter, scores), where `scores`
    ///      holds one big-endian uint32 (SCORE_BYTES bytes) per participant, by index.
    bytes4 private constant MAGIC = "SCCL";
    uint8 private constant VERSION = 4;
    uint256 private constant SCORE_BYTES = 4;
    uint8 private constant KIND_EVALUATION = uint8(BulletinBoard.Kind.Evaluation);
    /// @dev A stored score takes LANE_BITS bits; LANES of them fill a word.
    uint256 private constant LANE_BITS = 20;
    uint256 private constant LANES = 12;
    uint256 private constant LANE_MASK = (1 << LANE_BITS) - 1;

    // ───────────────────────────── EVENTS ─────────────────────────────

    /// @notice `voter`'s signed `scores` (one big-endian uint32 per participant, by index) were
    ///         counted in `round`; `digest` is its evaluation message's digest and `viewDigest`
    ///         the key of the view its entries state. This is the ballot's record.
    event ScoresSubmitted(uint64 indexed round, address indexed voter, bytes32 digest, bytes scores, bytes32 viewDigest);

    /// @notice The election of `round` elected `candidates` (participant indices, best first)
    ///         from `ballots` ballots.
    event CandidatesElected(uint64 indexed round, uint16[] candidates, uint16 ballots);

    /// @notice `votes` ballots of `round`, a strict majority of the roster, shared the view
    ///         `viewDigest`: the participants of bitmap `kept` were kept and those of `dropped`
    ///         dropped. Emitted by the tally, only when such a majority exists.
    event ViewAgreed(uint64 indexed round, bytes32 viewDigest, uint256 kept, uint256 dropped, uint16 votes);

    // ───────────────────────────── ERRORS ─────────────────────────────
    // The checks this contract shares with {Consensus} revert with the same errors (same names and
    // arguments, so the same selectors): a client handles both contracts alike.

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
    /// @notice The scores had `actual` bytes where `expected` were due (4 bytes each).
    error ConsensusWrongLength(uint256 expected, uint256 actual);
    /// @notice The signature recovers to `signer`, not to `voter`.
    error ConsensusInvalidSignature(address voter, address signer);
    /// @notice The election of `round` still waits for ballots (`ballots` of `expected`) until `deadline`.
    error ConsensusElectionStillOpen(uint64 round, uint16 ballots, uint256 expected, uint64 deadline);
    /// @notice The election of `round` has not been tallied yet.
    error ConsensusNotTallied(uint64 round);
    /// @notice The filter's assumed attackers must be fewer than the participants.
    error GramGateInvalidAssumedAttackers(uint256 assumedAttackers, uint256 participants);
    /// @notice The entry at `position` is for a participant that is not eligible (the voter
    ///         itself included), so it must be ABSTAIN.
    error GramGateIneligibleEntry(uint256 position, uint32 entry);
    /// @notice The voter's own entry, at `position`, must be ABSTAIN (kept), DROPPED or REJECTED.
    error GramGateInvalidOwnEntry(uint256 position, uint32 entry);
    /// @notice The entry at `position`, for an eligible participant, is neither a score in
    ///         [0, MAX_SCORE] nor DROPPED nor REJECTED.
    error GramGateInvalidEntry(uint256 position, uint32 entry);

    // ───────────────────────────── STORAGE ─────────────────────────────

    BulletinBoard private immutable _board;
    uint256 private immutable _participantCount;
    uint256 private immutable _candidates;
    bytes32 private immutable _nonce;
    uint256 private immutable _assumedAttackers;
    mapping(uint64 round => uint256 bitmap) private _voted;
    /// @dev Who voted for each view of a round (its votes are the bitmap's size).
    mapping(uint64 round => mapping(bytes32 viewDigest => uint256 bitmap)) private _viewVoters;
    /// @dev The view with the most votes so far (the first to reach that many).
    mapping(uint64 round => bytes32 viewDigest) private _leader;
    /// @dev Each view's bitmaps, by key: written the first time a round sees it (a key names the
    ///      same bitmaps in every round).
    mapping(bytes32 viewDigest => View) private _views;
    /// @dev Each ballot's scores, word w of voter v at key v·words + w; lanes of entries that are
    ///      not scores hold zero (the tally reads only the scores of kept participants).
    mapping(uint64 round => mapping(uint256 key => uint256 packed)) private _scores;
    /// @dev Empty until the round is tallied; then a marker byte (0x01) followed by the elected
    ///      candidates' indices, one byte each, best first.
    mapping(uint64 round => bytes record) private _elected;

    // ───────────────────────────── LOGIC ─────────────────────────────

    /// @notice Elects `candidates` participants per round for the session of `board_`, which
    ///         must name this contract as its consensus contract; every party sizes its filter
    ///         for `assumedAttackers` attackers.
    constructor(BulletinBoard board_, uint256 candidates, uint256 assumedAttackers_) {
        address named = board_.consensus();
        if (named != address(this)) revert ConsensusBoardMismatch(address(board_), named);
        uint256 count = board_.participantCount();
        if (candidates == 0 || candidates >= count) {
            revert ConsensusInvalidCandidateCount(candidates, count);
        }
        if (assumedAttackers_ >= count) revert GramGateInvalidAssumedAttackers(assumedAttackers_, count);
        _board = board_;
        _participantCount = count;
        _candidates = candidates;
        _nonce = board_.nonce();
        _assumedAttackers = assumedAttackers_;
    }

    /// @notice Counts `voter`'s ballot of `round`: its `scores` for every participant (the body of
    ///         its evaluation message: one big-endian uint32 each, by index), signed by the voter
    ///         as its evaluation message. Anyone may relay.
    /// @dev A ballot after the tally is refused as a second ballot or as late: a tally happens only
    ///      once every participant has voted or the ballot phase is over.
    function submitScores(uint64 round, address voter, bytes calldata scores, bytes calldata signature)
        external
    {
        uint256 eligible = _ballotPhase(round);
        (bool registered, uint256 self) = _board.participantIndex(voter);
        if (!registered) revert ConsensusUnknownVoter(voter);
        if (_voted[round] & (1 << self) != 0) revert ConsensusAlreadyVoted(round, voter);
        if (scores.length != SCORE_BYTES * _participantCount) {
            revert ConsensusWrongLength(SCORE_BYTES * _participantCount, scores.length);
        }
        bytes32 viewDigest = _countBallot(round, self, scores, eligible);
        bytes32 digest = _verifySignature(round, voter, scores, signature);
        _voted[round] |= 1 << self;
        emit ScoresSubmitted(round, voter, digest, scores, viewDigest);
    }

    /// @notice Elects the candidates of `round` once every participant has voted or the ballot
    ///         phase has ended. Anyone may call it, so no server can hold an election open.
    /// @dev A participant proven invalid after the ballots were cast is not elected even where
    ///      the agreed view kept it: the kept participants are those still eligible now.
    function tally(uint64 round) external returns (uint16[] memory candidates) {
        if (_elected[round].length != 0) revert ConsensusElectionClosed(round);
        BulletinBoard.RoundInfo memory info = _board.roundInfo(round);
        if (info.openedAt == 0) revert ConsensusRoundNotOpen(round);
        uint16 ballots = uint16(Bitmaps.count(_voted[round]));
        if (ballots < _participantCount && block.timestamp <= info.ballotDeadline) {
            revert ConsensusElectionStillOpen(round, ballots, _participantCount, info.ballotDeadline);
        }
        bytes32 leader = _leader[round];
        uint256 voters = _viewVoters[round][leader];
        uint256 votes = Bitmaps.count(voters);
        if (2 * votes > _participantCount) {
            View memory agreed = _views[leader];
            emit ViewAgreed(round, leader, agreed.kept, agreed.dropped, uint16(votes));
            uint256 eligible = info.revealBitmap & ~info.invalidBitmap;
            Count memory count = Count({
                round: round,
                seed: _board.tieSeedOf(round),
                kept: agreed.kept & eligible,
                voters: _members(voters & ~agreed.dropped)
            });
            candidates = _elect(count);
        } else {
            candidates = new uint16[](0);
        }
        // A marker byte, then one byte an index: up to all 256 participants can be elected, which
        // a count byte could not say.
        bytes memory record = new bytes(candidates.length + 1);
        record[0] = 0x01;
        for (uint256 k = 0; k < candidates.length; ++k) {
            record[k + 1] = bytes1(uint8(candidates[k]));
        }
        _elected[round] = record;
        emit CandidatesElected(round, candidates, ballots);
    }

    // ───────────────────────────── VIEWS ─────────────────────────────

    /// @notice The election rule this contract counts by.
    function rule() external pure returns (string memory) {
        return "gram-gate";
    }

    /// @notice The bulletin board of this session.
    function board() external view returns (BulletinBoard) {
        return _board;
    }

    /// @notice How many candidates each election elects at most (M).
    function candidateCount() external view returns (uint256) {
        return _candidates;
    }

    /// @notice How many participants this contract counts ballots for (the board's, at deployment).
    /// @dev This, {nonce} and {assumedAttackers} expose the immutables, so that a participant
    ///      checking the code (with immutables masked) can check their values too.
    function participantCount() external view returns (uint256) {
        return _participantCount;
    }

    /// @notice The session nonce this contract checks ballot signatures with (the board's).
    function nonce() external view returns (bytes32) {
        return _nonce;
    }

    /// @notice How many attackers every party's filter is sized for (f, fixed at deployment; the
    ///         filter runs off chain, so this is recorded for the parties, not read here).
    function assumedAttackers() external view returns (uint256) {
        return _assumedAttackers;
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

    /// @notice How many ballots of `round` state the view `viewDigest`.
    function viewVotes(uint64 round, bytes32 viewDigest) external view returns (uint256) {
        return Bitmaps.count(_viewVoters[round][viewDigest]);
    }

    /// @notice The view of `round` a strict majority of the roster agreed on (`agreed`), with its
    ///         bitmaps and votes; without a majority, `agreed` is false, the bitmaps zero and
    ///         `votes` those of the view most ballots shared.
    function agreedViewOf(uint64 round)
        external
        view
        returns (bool agreed, uint256 kept, uint256 dropped, uint256 votes)
    {
        if (_elected[round].length == 0) revert ConsensusNotTallied(round);
        bytes32 leader = _leader[round];
        votes = Bitmaps.count(_viewVoters[round][leader]);
        if (2 * votes > _participantCount) {
            View memory view_ = _views[leader];
            return (true, view_.kept, view_.dropped, votes);
        }
    }

    /// @notice The candidates elected in `round`, best first.
    function electedOf(uint64 round) external view returns (uint16[] memory candidates) {
        bytes memory record = _elected[round];
        if (record.length == 0) revert ConsensusNotTallied(round);
        candidates = new uint16[](record.length - 1);
        for (uint256 k = 0; k < candidates.length; ++k) {
            candidates[k] = uint8(record[k + 1]);
        }
    }

    // ───────────────────────────── INTERNAL ─────────────────────────────

    /// @dev Reverts unless `round` takes ballots now; returns the bitmap of its eligible
    ///      participants (revealed, not proven invalid).
    function _ballotPhase(uint64 round) private view returns (uint256 eligible) {
        BulletinBoard.RoundInfo memory info = _board.roundInfo(round);
        if (info.openedAt == 0) revert ConsensusRoundNotOpen(round);
        bool committed = info.updates == _participantCount || block.timestamp > info.updateDeadline;
        bool revealed = committed && info.revealBitmap == info.updateBitmap;
        if (!revealed && block.timestamp <= info.revealDeadline) {
            revert ConsensusBallotPhaseNotOpen(round, info.revealDeadline);
        }
        if (block.timestamp > info.ballotDeadline) revert ConsensusBallotPhaseOver(round, info.ballotDeadline);
        return info.revealBitmap & ~info.invalidBitmap;
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

    /// @dev Checks every entry of the ballot of voter `self` (first wrong position reverts) and
    ///      returns the view it states and its scores packed in lanes, by word.
    function _readBallot(bytes calldata scores, uint256 self, uint256 eligible)
        private
        view
        returns (uint256 kept, uint256 dropped, uint256[] memory packed)
    {
        uint256 n = _participantCount;
        packed = new uint256[]((n + LANES - 1) / LANES);
        for (uint256 j = 0; j < n; ++j) {
            uint32 entry = _score(scores, j);
            uint256 bit = 1 << j;
            if (eligible & bit == 0) {
                if (entry != ABSTAIN) revert GramGateIneligibleEntry(j, entry);
            } else if (j == self) {
                if (entry == ABSTAIN) kept |= bit;
                else if (entry == DROPPED) dropped |= bit;
                else if (entry != REJECTED) revert GramGateInvalidOwnEntry(j, entry);
            } else if (entry <= MAX_SCORE) {
                kept |= bit;
                packed[j / LANES] |= uint256(entry) << ((j % LANES) * LANE_BITS);
            } else if (entry == DROPPED) {
                dropped |= bit;
            } else if (entry != REJECTED) {
                revert GramGateInvalidEntry(j, entry);
            }
        }
    }

    /// @dev Checks the entries of voter `self`'s ballot of `round`, counts the view they state and
    ///      stores its scores; returns the view's key.
    function _countBallot(uint64 round, uint256 self, bytes calldata scores, uint256 eligible)
        private
        returns (bytes32 viewDigest)
    {
        (uint256 kept, uint256 dropped, uint256[] memory packed) = _readBallot(scores, self, eligible);
        viewDigest = keccak256(abi.encode(kept, dropped));
        _countView(round, viewDigest, kept, dropped, 1 << self);
        uint256 base = self * packed.length;
        for (uint256 w = 0; w < packed.length; ++w) {
            if (packed[w] != 0) _scores[round][base + w] = packed[w]; // words left zero cost nothing
        }
    }

    /// @dev Adds the voter `bit` to the view `viewDigest` of `round` (recording its bitmaps the
    ///      first time the round sees it) and makes that view the leader once it has more votes.
    function _countView(uint64 round, bytes32 viewDigest, uint256 kept, uint256 dropped, uint256 bit) private {
        uint256 voters = _viewVoters[round][viewDigest];
        if (voters == 0) {
            View storage stored = _views[viewDigest];
            if (stored.kept != kept) stored.kept = kept;
            if (stored.dropped != dropped) stored.dropped = dropped;
        }
        voters |= bit;
        _viewVoters[round][viewDigest] = voters;
        bytes32 leader = _leader[round];
        if (leader != viewDigest) {
            uint256 leading = leader == bytes32(0) ? 0 : Bitmaps.count(_viewVoters[round][leader]);
            if (Bitmaps.count(voters) > leading) _leader[round] = viewDigest;
        }
    }

    /// @dev The set bits of `bitmap`, ascending.
    function _members(uint256 bitmap) private pure returns (uint256[] memory members) {
        members = new uint256[](Bitmaps.count(bitmap));
        uint256 k;
        for (uint256 i = 0; bitmap >> i != 0; ++i) {
            if ((bitmap >> i) & 1 != 0) members[k++] = i;
        }
    }

    /// @dev Every scored participant whose upper median clears the round's bar, and at least the
    ///      min(M, scored) best, best first; equal medians prefer the lower tie key.
    function _elect(Count memory count) private view returns (uint16[] memory top) {
        uint256[] memory medians = _medians(count);
        uint256[] memory best = new uint256[](medians.length); // median << 8 | index, best first
        uint256 scored = _rank(count, medians, best);
        uint256 bar = _bar(medians);
        // Those clearing the bar are a prefix of the order; the M best are elected whatever it is.
        uint256 elected = scored < _candidates ? scored : _candidates;
        while (elected < scored && best[elected] >> 8 >= bar) ++elected;
        top = new uint16[](elected);
        for (uint256 k = 0; k < elected; ++k) {
            top[k] = uint16(best[k] & 0xff);
        }
    }

    /// @dev Fills `best` with every scored participant (median << 8 | index), best first, equal
    ///      medians by the lower tie key; returns how many.
    function _rank(Count memory count, uint256[] memory medians, uint256[] memory best)
        private
        view
        returns (uint256 filled)
    {
        uint256[] memory keys = new uint256[](medians.length); // their tie keys
        for (uint256 j = 0; j < medians.length; ++j) {
            if (medians[j] == 0) continue; // not kept, or no counted score for it
            uint256 entry = ((medians[j] - 1) << 8) | j;
            filled = _insert(best, keys, filled, entry, SecclSigning.tieKey(count.seed, count.round, j));
        }
    }

    /// @dev The election's bar over the scored participants' medians (`medians`: median plus one,
    ///      zero for one not scored): their lower median minus max(ELECTION_MADS × MAD,
    ///      ELECTION_FLOOR), at least zero; zero when nobody is scored.
    function _bar(uint256[] memory medians) private pure returns (uint256) {
        uint256[] memory values = new uint256[](medians.length);
        uint256 scored;
        for (uint256 j = 0; j < medians.length; ++j) {
            if (medians[j] != 0) values[scored++] = medians[j] - 1;
        }
        if (scored == 0) return 0;
        uint256 middle = _select(values, scored, (scored - 1) / 2);
        for (uint256 k = 0; k < scored; ++k) {
            values[k] = values[k] > middle ? values[k] - middle : middle - values[k];
        }
        uint256 margin = ELECTION_MADS * _select(values, scored, (scored - 1) / 2);
        if (margin < ELECTION_FLOOR) margin = ELECTION_FLOOR;
        return middle > margin ? middle - margin : 0;
    }

    /// @dev Inserts `entry` (median << 8 | index) with tie key `key` into the first `filled`
    ///      entries of `best` (best first; `keys` alongside) unless the list is full and it ranks
    ///      after the last; returns the new fill. O(M) steps at worst.
    function _insert(uint256[] memory best, uint256[] memory keys, uint256 filled, uint256 entry, uint256 key)
        private
        pure
        returns (uint256)
    {
        unchecked {
            uint256 k = filled;
            if (k == best.length) {
                if (!_beats(entry, key, best[k - 1], keys[k - 1])) return filled;
                --k; // the last one leaves the list
            } else {
                ++filled;
            }
            while (k > 0 && _beats(entry, key, best[k - 1], keys[k - 1])) {
                (best[k], keys[k]) = (best[k - 1], keys[k - 1]);
                --k;
            }
            (best[k], keys[k]) = (entry, key);
            return filled;
        }
    }

    /// @dev Whether entry `a` (tie key `keyA`) ranks before entry `b` (tie key `keyB`): a higher
    ///      median, or an equal one and a lower tie key.
    function _beats(uint256 a, uint256 keyA, uint256 b, uint256 keyB) private pure returns (bool) {
        return a >> 8 > b >> 8 || (a >> 8 == b >> 8 && keyA < keyB);
    }

    /// @dev Each participant's upper median plus one, by index: zero for one not kept or without
    ///      a counted score. Reads each counted ballot's words once, a word (LANES participants)
    ///      at a time.
    function _medians(Count memory count) private view returns (uint256[] memory medians) {
        medians = new uint256[](_participantCount);
        uint256 words = (_participantCount + LANES - 1) / LANES;
        uint256[] memory voters = count.voters;
        uint256[] memory packed = new uint256[](voters.length);
        uint256[] memory column = new uint256[](voters.length);
        for (uint256 w = 0; w < words; ++w) {
            uint256 group = (count.kept >> (w * LANES)) & ((1 << LANES) - 1);
            if (group == 0) continue;
            for (uint256 t = 0; t < voters.length; ++t) {
                packed[t] = _scores[count.round][voters[t] * words + w];
            }
            for (uint256 lane = 0; group >> lane != 0; ++lane) {
                if ((group >> lane) & 1 == 0) continue;
                uint256 j = w * LANES + lane;
                uint256 length = _column(column, packed, voters, j, lane * LANE_BITS);
                if (length != 0) medians[j] = _upperMedian(column, length) + 1;
            }
        }
    }

    /// @dev Fills `column` with the lane at `shift` of each of `packed` (the counted voters' words),
    ///      skipping voter `j`'s own; returns how many it wrote.
    function _column(
        uint256[] memory column,
        uint256[] memory packed,
        uint256[] memory voters,
        uint256 j,
        uint256 shift
    ) private pure returns (uint256 length) {
        assembly ("memory-safe") {
            let out := add(column, 0x20)
            let end := add(voters, shl(5, add(mload(voters), 1)))
            let word := add(packed, 0x20)
            for { let voter := add(voters, 0x20) } lt(voter, end) { voter := add(voter, 0x20) } {
                if iszero(eq(mload(voter), j)) {
                    mstore(out, and(shr(shift, mload(word)), 0xfffff)) // LANE_MASK
                    out := add(out, 0x20)
                }
                word := add(word, 0x20)
            }
            length := shr(5, sub(out, add(column, 0x20)))
        }
    }

    /// @dev The upper median of the first `length` (at least one) values of `values`: element
    ///      length/2 in ascending order (with an even count the upper one: colluders holding
    ///      exactly half of an honest participant's entries can then only raise its median).
    function _upperMedian(uint256[] memory values, uint256 length) private pure returns (uint256) {
        return _select(values, length, length / 2);
    }

    /// @dev Element `rank` (below `length`) in ascending order of the first `length` values of
    ///      `values`, found in place by Hoare's selection (Wirth's FIND: partition around the
    ///      element at that position, keep the side that holds it). Expected O(length) steps,
    ///      O(length²) at worst.
    function _select(uint256[] memory values, uint256 length, uint256 rank) private pure returns (uint256 value) {
        assembly ("memory-safe") {
            let first := add(values, 0x20)
            let k := add(first, shl(5, rank))
            let l := first
            let r := add(first, shl(5, sub(length, 1)))
            for {} lt(l, r) {} {
                let x := mload(k)
                let i := l
                let j := r
                for {} 1 {} {
                    for {} lt(mload(i), x) {} { i := add(i, 0x20) }
                    for {} lt(x, mload(j)) {} { j := sub(j, 0x20) }
                    if iszero(gt(i, j)) {
                        let swapped := mload(i)
                        mstore(i, mload(j))
                        mstore(j, swapped)
                        i := add(i, 0x20)
                        j := sub(j, 0x20)
                    }
                    if gt(i, j) { break }
                }
                if lt(j, k) { l := i }
                if lt(k, i) { r := j }
            }
            value := mload(k)
        }
    }

    /// @dev Participant `index`'s entry in a ballot's `scores`; callers keep `index` below N, and
    ///      `submitScores` has checked that `scores` holds exactly N of them.
    function _score(bytes calldata scores, uint256 index) private pure returns (uint32 score) {
        assembly ("memory-safe") {
            score := shr(224, calldataload(add(scores.offset, mul(index, 4))))
        }
    }
}
