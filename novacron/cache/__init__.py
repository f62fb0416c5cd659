"""The three-tier cache: pure hierarchy, eviction policies, traces and the offline optimum.

``CacheHierarchy`` composes ``CacheTier`` implementations: ``MemoryTier`` (here, for L1 and for
simulated tiers), ``backends.redis_tier.RedisTier`` (L2) and ``backends.disk_tier.DiskTier`` (L3).
"""

from novacron.cache.adaptive import AdaptiveSizing
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
from novacron.cache.memory import MemoryTier
from novacron.cache.policies import POLICY_NAMES, LruPolicy, S3FifoPolicy, TlruPolicy, make_policy

__all__ = ["POLICY_NAMES", "AdaptiveSizing", "CacheHierarchy", "HierarchyOptions", "LruPolicy", "MemoryTier",
           "S3FifoPolicy", "TlruPolicy", "make_policy"]
