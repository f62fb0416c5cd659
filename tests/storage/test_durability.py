"""Durability: the Markov chain against textbook results, and the simulation against the chain."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from novacron.storage.durability import (
    DISK_AFR,
    HOURS_PER_YEAR,
    StripeChain,
    annual_loss_probability,
    approx_mttdl_h,
    rate_per_h_from_afr,
    scheme_shape,
)
from sim.storage_durability import SCHEMES, PoolConfig, markov_chain, simulate

LAMBDA, MU = 1 / 1000, 1 / 10


def test_a_mirror_matches_the_textbook_mttdl() -> None:
    """Two disks, one repair at a time: MTTDL = (3 lambda + mu) / (2 lambda^2) (Gibson 1991, RAID-1)."""
    chain = StripeChain(shards=2, tolerated=1, failure_rate_per_h=LAMBDA, repair_rate_per_h=MU, repair_slots=1)
    assert chain.mttdl_h() == pytest.approx((3 * LAMBDA + MU) / (2 * LAMBDA**2), rel=1e-12)


def test_no_redundancy_dies_with_the_first_disk() -> None:
    chain = StripeChain(shards=5, tolerated=0, failure_rate_per_h=LAMBDA, repair_rate_per_h=MU)
    assert chain.mttdl_h() == pytest.approx(1 / (5 * LAMBDA), rel=1e-12)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_approximation_holds_when_repair_is_much_faster(scheme: str) -> None:
    shards, tolerated, _ = scheme_shape(scheme)
    chain = StripeChain(shards=shards, tolerated=tolerated, failure_rate_per_h=LAMBDA, repair_rate_per_h=1e4 * LAMBDA)
    assert chain.mttdl_h() == pytest.approx(approx_mttdl_h(chain), rel=0.01)
    assert 1 / chain.loss_rate_per_h() == pytest.approx(chain.mttdl_h(), rel=0.01)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_loss_rate_of_independent_disks_is_binomial(scheme: str) -> None:
    """With parallel repair each disk is an independent on/off process, down with p = lambda / (lambda + mu)."""
    shards, tolerated, _ = scheme_shape(scheme)
    chain = StripeChain(shards=shards, tolerated=tolerated, failure_rate_per_h=LAMBDA, repair_rate_per_h=MU)
    p = LAMBDA / (LAMBDA + MU)
    expected = math.comb(shards, tolerated) * p**tolerated * (1 - p) ** (shards - tolerated) * (shards - tolerated)
    assert chain.loss_rate_per_h() == pytest.approx(expected * LAMBDA, rel=1e-9)


def test_field_afr_and_annual_probability() -> None:
    rate = rate_per_h_from_afr(DISK_AFR)
    assert -math.expm1(-rate * HOURS_PER_YEAR) == pytest.approx(DISK_AFR, rel=1e-12)
    assert annual_loss_probability(1e-9) == pytest.approx(1e-9 * HOURS_PER_YEAR, rel=1e-4)
    with pytest.raises(ValueError, match=r"afr=1\.7"):
        rate_per_h_from_afr(1.7)
    with pytest.raises(ValueError, match="scheme='rs10'"):
        scheme_shape("rs10")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_simulation_agrees_with_the_markov_model_within_10_percent(scheme: str) -> None:
    """Independent exponential failures and repairs, accelerated (disk MTTF 500 h, MTTR 10 h) so a
    short run sees thousands of losses; seeded, so the numbers are the same on every run."""
    config = PoolConfig(scheme=scheme, horizon_h=200_000, seed=7)
    result = simulate(config)
    markov = markov_chain(config).loss_rate_per_h()
    assert result.loss_events > 150, result
    assert result.loss_rate_per_h == pytest.approx(markov, rel=0.10), (result, markov)


def test_correlated_rack_failures_break_the_closed_form() -> None:
    """Rack events kill every disk of a rack at once: placing shards by host only, the simulation
    loses data far more often than the independent-failure chain (fed the same per-disk rate) says."""
    racky = PoolConfig(scheme="rs6+3", disk_rate_per_h=1 / 2000, rack_rate_per_h=1 / 20_000, repair="bandwidth",
                       horizon_h=300_000, seed=3)
    by_host = simulate(replace(racky, rule_level="host"))
    by_rack = simulate(racky)
    markov = markov_chain(racky, by_host.mean_repair_h).loss_rate_per_h()
    assert by_host.loss_rate_per_h > 5 * markov
    assert by_host.loss_rate_per_h > 2 * by_rack.loss_rate_per_h


def test_a_lone_rebuild_runs_at_the_spare_disks_speed() -> None:
    config = PoolConfig(scheme="rs6+3", disk_rate_per_h=1e-6, repair="bandwidth", horizon_h=100_000, seed=5)
    result = simulate(config)
    assert result.disk_failures > 0
    assert result.mean_repair_h == pytest.approx(4000 * 1024 / 100 / 3600, rel=1e-9)


def test_bad_repair_mode_names_the_field() -> None:
    with pytest.raises(ValueError, match="repair='fast'"):
        PoolConfig(repair="fast")


def test_pool_rate_is_the_stripe_rate_when_one_stripe_fills_the_pool() -> None:
    from novacron.storage.durability import pool_loss_rate_per_h

    stripe = StripeChain(shards=9, tolerated=3, failure_rate_per_h=LAMBDA, repair_rate_per_h=MU).loss_rate_per_h()
    many = pool_loss_rate_per_h(nodes=9, shards=9, tolerated=3, stripes=1e6, failure_rate_per_h=LAMBDA,
                                repair_rate_per_h=MU)
    assert many == pytest.approx(stripe, rel=1e-9)
    few = pool_loss_rate_per_h(nodes=100, shards=9, tolerated=3, stripes=1, failure_rate_per_h=LAMBDA,
                               repair_rate_per_h=MU)
    assert few < many


def test_the_analysis_pools_gain_nines_with_wider_codes() -> None:
    from novacron.storage.durability import estimate_pool

    pools = [estimate_pool(1000, 1000.0, scheme) for scheme in SCHEMES]
    assert [round(p.usable_tb) for p in pools] == [333, 667, 714]
    assert pools[0].nines < pools[1].nines < pools[2].nines


@pytest.mark.parametrize("scheme", SCHEMES)
def test_pool_level_loss_rate_matches_the_simulation(scheme: str) -> None:
    """The pool formula (clumped losses, copyset coverage) against the simulation's count of disk
    deaths that lost any stripe; shards placed on any distinct disks, as the formula assumes."""
    from novacron.storage.durability import pool_loss_rate_per_h

    config = PoolConfig(scheme=scheme, horizon_h=200_000, seed=7, rule_level="node")
    result = simulate(config)
    shards, tolerated, _ = scheme_shape(scheme)
    expected = pool_loss_rate_per_h(nodes=120, shards=shards, tolerated=tolerated, stripes=config.stripes,
                                    failure_rate_per_h=config.disk_rate_per_h,
                                    repair_rate_per_h=1 / config.mean_repair_h)
    assert result.pool_loss_events > 1000
    assert result.pool_loss_events / config.horizon_h == pytest.approx(expected, rel=0.10)


def test_latent_sector_errors_add_losses_the_markov_model_does_not_count() -> None:
    """Replication x3 rebuilding its last copy reads 32 GiB per stripe: at 1e-14 errors per bit,
    about 0.3 % of those rebuilds hit an unreadable sector, which the chain (no such state) misses."""
    base = PoolConfig(scheme="replication3", disk_rate_per_h=1 / 2000, repair="bandwidth", horizon_h=400_000, seed=2)
    clean = simulate(base)
    latent = simulate(replace(base, latent_errors_per_bit=1e-14))
    assert latent.disk_failures == clean.disk_failures  # latent errors draw from their own stream
    assert latent.loss_events > 1.5 * clean.loss_events
