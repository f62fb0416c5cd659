"""The simulated Raft managers: the cluster driver (``cluster``), the run component
(``component``), the Raft-backed control plane (``control_plane``), the scripted faults both
drive (``scripted_faults``), the event reporter (``reporter``), timing experiments
(``experiments``), planted bugs and the vopr."""
