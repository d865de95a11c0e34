"""The adversaries: malicious participants and servers, in the ways docs/ARCHITECTURE.md lists.

Malicious participants follow the message protocol like everyone else (they sign, post and
check the chain exactly as an honest :class:`Participant` does); only what they train on, what
they upload or how they score differs. SecCL cannot stop them, it throttles them: honest voters
score their updates low and the consensus contract keeps them out of the candidates.

Every class takes ``start_round`` (default 1): before that round it behaves honestly (the
paper's Figure 5 adversaries turn malicious at round 5). Attack options are keyword
arguments after Participant's own; the classes cooperate through ``super()``, so a
combination such as ``class C(CollusionVoter, LabelFlippingParticipant)`` works, and
:func:`attack_class` builds one from a name like ``"label-flip+collude-votes"``.

The participants by family: :mod:`.base` (the common base :class:`Adversary`),
:mod:`.poisoning` (poisoned training data), :mod:`.updates` (forged updates), :mod:`.voting`
(colluding voters), :mod:`.coalition` (omniscient colluders: ALIE, IPM, the adaptive backdoor)
and :mod:`.registry` (the attacks by name, and who attacks). Malicious parameter servers, which
deviate from the protocol itself, are in :mod:`.server`. Import each name from its module: this
package re-exports nothing.
"""
