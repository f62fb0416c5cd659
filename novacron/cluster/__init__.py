"""The cluster's inventory: hosts, VMs and where each VM runs, as events and a projection."""
