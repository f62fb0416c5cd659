"""Simulated migrations: the QEMU pre-copy/post-copy model (``qemu_model``), the simulated
hypervisor over it (``hypervisor``), the run's migration service (``service``) and the commit
of moves through the control plane (``commit``)."""
