"""Bench configuration: the built-in sim bench, the example hardware file, strict validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.config import (
    BenchConfig,
    BenchConfigError,
    builtin_bench_path,
    load_bench_config,
    parse_bench_config,
    toml_text,
)
from instruments.errors import SafetyLimits

EXAMPLE = Path(__file__).resolve().parents[1] / "crossbar" / "benches" / "example_hardware.toml"


def _write(tmp_path: Path, text: str, name: str = "bench.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_sim_bench_loads_with_its_values() -> None:
    cfg = load_bench_config("sim")
    assert cfg.backend == "twins"
    assert cfg.name == "sim"
    assert cfg.shape == (10, 10)
    assert cfg.limits.max_voltage == 6.0
    assert cfg.limits.max_compliance == 1e-3
    assert cfg.limits.max_read_voltage == 0.3
    assert cfg.wiring.pins == (0, 1, 2, 3)
    assert cfg.wiring.tia_gain_ohm == 1e4
    assert cfg.simulation.profile == "optimized"
    assert cfg.simulation.latency_s == 0.003
    assert cfg.safety_limits == SafetyLimits(6.0, 1e-3)
    assert builtin_bench_path("sim").name == "sim.toml"
    assert builtin_bench_path("sim").is_file()


def test_example_hardware_file_loads() -> None:
    cfg = load_bench_config(EXAMPLE)
    assert cfg.backend == "instruments"
    assert cfg.instruments.keithley_resource == "GPIB0::22::INSTR"
    assert cfg.instruments.keithley_timeout_ms == 10_000
    assert cfg.wiring.pulse_instrument == "keithley"
    assert cfg.instruments.builtin_descending is False
    assert cfg.source == str(EXAMPLE)


def test_to_dict_round_trips_and_is_toml_shaped() -> None:
    cfg = load_bench_config("sim")
    d = cfg.to_dict()
    assert set(d) == {"bench", "instruments", "wiring", "crossbar", "limits", "simulation"}
    again = parse_bench_config(d, origin="<copy>")
    assert again.to_dict() == d
    assert again.wiring == cfg.wiring and again.limits == cfg.limits


def test_faults_section_parses(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[bench]
backend = "twins"
[simulation.faults.keithley]
timeout_after = 12
error_after = 3
error_code = -222
[simulation.faults.ad2]
connection_lost_after = 40
""",
    )
    cfg = load_bench_config(path)
    k = cfg.simulation.faults["keithley"]
    assert (k.timeout_after, k.error_after, k.error_code) == (12, 3, -222)
    assert cfg.simulation.faults["ad2"].connection_lost_after == 40
    assert k.active and cfg.simulation.faults["ad2"].active
    d = cfg.to_dict()
    assert d["simulation"]["faults"]["keithley"]["timeout_after"] == 12
    assert parse_bench_config(d).simulation.faults == cfg.simulation.faults


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[wiring]\npulse_instrument = "awg"\n',
            'bench.toml: [wiring] pulse_instrument = "awg": allowed "ad2", "keithley"',
        ),
        (
            '[bench]\nbackend = "hardware"\n',
            'bench.toml: [bench] backend = "hardware": allowed "instruments", "twins", "physics"',
        ),
        (
            "[wiring]\ntia_gain = 1e4\n",
            "bench.toml: [wiring] unknown key 'tia_gain': allowed keys clk_pin, data_pin",
        ),
        (
            '[crossbar]\nrows = "10"\n',
            'bench.toml: [crossbar] rows = "10": allowed an integer in [1, 256]',
        ),
        (
            "[crossbar]\nrows = 0\n",
            "bench.toml: [crossbar] rows = 0: allowed an integer in [1, 256]",
        ),
        (
            "[limits]\nmax_voltage = -1.0\n",
            "bench.toml: [limits] max_voltage = -1.0: allowed a number in (0, 505]",
        ),
        (
            "[limits]\nmax_compliance = 0.1\n",
            "bench.toml: [limits] max_compliance = 0.1: allowed a number in (0, 0.025]",
        ),
        (
            "[wiring]\ndata_pin = 16\n",
            "bench.toml: [wiring] data_pin = 16: allowed an integer in [0, 15]",
        ),
        (
            "[wiring]\nclk_pin = 0\n",
            "bench.toml: [wiring] data_pin, clk_pin, latch_pin, enable_pin = [0, 0, 2, 3]: "
            "allowed four distinct DIO pins 0..15",
        ),
        (
            "[limits]\nmax_read_voltage = 7.0\nmax_voltage = 6.0\n",
            "bench.toml: [limits] max_read_voltage = 7.0: allowed a number in (0, 5]",
        ),
        (
            "[limits]\nmax_read_voltage = 2.0\nmax_voltage = 1.0\n",
            "bench.toml: [limits] max_read_voltage = 2.0: allowed a number <= max_voltage (1)",
        ),
        (
            "[simulation]\ndevice_noise = 1\n",
            "bench.toml: [simulation] device_noise = 1: allowed true or false",
        ),
        (
            "[instruments]\nkeithley_timeout_ms = 5.5\n",
            "bench.toml: [instruments] keithley_timeout_ms = 5.5: allowed an integer in "
            "[100, 600000]",
        ),
        (
            "[simulation.faults.scope]\ntimeout_after = 1\n",
            "bench.toml: unknown section [simulation.faults.scope]: allowed "
            "[simulation.faults.keithley], [simulation.faults.ad2]",
        ),
        (
            "[simulation.faults.keithley]\ntimeout_after = -1\n",
            "bench.toml: [simulation.faults.keithley] timeout_after = -1: allowed an integer >= 0",
        ),
        (
            "[hardware]\nx = 1\n",
            "bench.toml: unknown section [hardware]: allowed [bench], [instruments], [wiring], "
            "[crossbar], [limits], [simulation]",
        ),
        (
            "[simulation.device]\ndrift_nu = 1.5\n",
            "bench.toml: [simulation.device] drift_nu = 1.5: allowed a number in [0, 1]",
        ),
        (
            "[simulation.device]\nlevels = 2.0\n",
            "bench.toml: [simulation.device] levels = 2.0: allowed an integer in [0, 256]",
        ),
        (
            "[simulation.device]\nv_reset = 1.0\n",
            "bench.toml: [simulation.device] v_reset = 1.0: allowed a number in [-100, 0)",
        ),
        (
            "[simulation.device]\ngon = 1e-5\n",
            "bench.toml: [simulation.device] unknown key 'gon': allowed keys alpha_off, alpha_on",
        ),
        (
            "[simulation]\ndevice = 3\n",
            "bench.toml: [simulation] device = 3: allowed a table [simulation.device]",
        ),
        (
            '[simulation]\nprofile = "nowhere.json"\n',
            'bench.toml: [simulation] profile = "nowhere.json": cannot read the device profile',
        ),
        (
            "[wiring]\nrow_drivers = 11\n",
            "bench.toml: [wiring] row_drivers = 11: allowed an integer in [1, 10] (crossbar rows)",
        ),
    ],
)
def test_invalid_values_name_file_key_and_allowed(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BenchConfigError) as info:
        load_bench_config(path)
    message = str(info.value)
    assert message.replace(str(path), "bench.toml").startswith(expected), message


def test_missing_file_and_bad_toml_and_unknown_builtin(tmp_path: Path) -> None:
    with pytest.raises(BenchConfigError, match=r"nowhere\.toml: no such bench file .*\"sim\""):
        load_bench_config(tmp_path / "nowhere.toml")
    bad = _write(tmp_path, "[bench\nname = 1\n")
    with pytest.raises(BenchConfigError, match="not valid TOML"):
        load_bench_config(bad)
    with pytest.raises(BenchConfigError, match="unknown built-in bench 'lab'"):
        builtin_bench_path("lab")


def test_bench_config_error_is_a_value_error() -> None:
    assert issubclass(BenchConfigError, ValueError)


def test_defaults_are_the_sim_values() -> None:
    cfg = BenchConfig()
    assert cfg.backend == "twins" and cfg.shape == (10, 10)
    assert parse_bench_config({}).to_dict() == cfg.to_dict()


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(-5, 300),
    v=st.floats(allow_nan=True, allow_infinity=True, width=64),
    pins=st.lists(st.integers(-2, 18), min_size=4, max_size=4),
)
def test_parsing_accepts_exactly_the_valid_values(rows: int, v: float, pins: list[int]) -> None:
    data = {
        "crossbar": {"rows": rows, "cols": 10},
        "limits": {"max_voltage": v},
        "wiring": dict(zip(("data_pin", "clk_pin", "latch_pin", "enable_pin"), pins)),
    }
    valid = (
        1 <= rows <= 256
        and v == v
        and abs(v) != float("inf")
        and 0 < v <= 505
        and all(0 <= p <= 15 for p in pins)
        and len(set(pins)) == 4
        and v >= 0.3
        and rows >= 2
    )
    if valid:
        cfg = parse_bench_config(data)
        assert cfg.crossbar.rows == rows and cfg.limits.max_voltage == v
        assert tomllib.loads(toml_text(cfg.to_dict())) == cfg.to_dict()
    else:
        with pytest.raises(BenchConfigError, match=r"<dict>: "):
            parse_bench_config(data)


def test_a_device_given_inline_or_as_a_profile_json_is_built_with_those_values(
    tmp_path: Path,
) -> None:
    from lab import device_profile, open_backend
    from sim_backends.profiles import PROFILES

    inline = _write(
        tmp_path,
        '[bench]\nbackend = "physics"\n[simulation]\nprofile = "typical"\n'
        "[simulation.device]\ndrift_nu = 0.07\nlevels = 4\ng_noise = 0.02\n",
    )
    cfg = load_bench_config(inline)
    assert cfg.simulation.device.given() == {"drift_nu": 0.07, "levels": 4, "g_noise": 0.02}
    prof = device_profile(cfg)
    assert (prof.drift_nu, prof.levels, prof.g_noise) == (0.07, 4, 0.02)
    assert prof.name == "typical+inline" and prof.target_usability is None
    assert prof.replace(name="typical", target_usability=0.5, drift_nu=0.03, levels=0,
                        g_noise=0.0) == PROFILES["typical"]  # fmt: skip
    backend = open_backend(cfg)
    assert backend.sim.devices.profile == prof and backend.sim.devices.levels == 4
    # the table survives the data file's copy of the configuration
    assert parse_bench_config(cfg.to_dict()).simulation.device == cfg.simulation.device
    assert "device" not in load_bench_config("sim").to_dict()["simulation"]

    # a profile JSON, relative to the bench file, with inline fields on top
    sub = tmp_path / "devices"
    sub.mkdir()
    (sub / "mine.json").write_text(PROFILES["paper"].replace(name="mine", k_on=5e3).to_json())
    bench = _write(
        tmp_path,
        '[simulation]\nprofile = "devices/mine.json"\n[simulation.device]\nseed_note = 1\n',
        "j.toml",
    )
    with pytest.raises(BenchConfigError, match="unknown key 'seed_note'"):
        load_bench_config(bench)
    bench.write_text(
        '[simulation]\nprofile = "devices/mine.json"\n[simulation.device]\nk_off = 7e2\n'
    )
    cfg = load_bench_config(bench)
    assert Path(cfg.simulation.profile) == sub / "mine.json"
    prof = device_profile(cfg)
    assert prof.name == "mine+inline" and prof.k_on == 5e3 and prof.k_off == 7e2
    assert prof.levels == PROFILES["paper"].levels
    # a JSON with a field out of range or unknown: one line naming it
    (sub / "bad.json").write_text(json.dumps({"g_noise": 2.0}))
    bench.write_text('[simulation]\nprofile = "devices/bad.json"\n')
    with pytest.raises(BenchConfigError, match=r'profile = "devices/bad.json": g_noise = 2.0: '
                       r"allowed a number in \[0, 1\]"):  # fmt: skip
        load_bench_config(bench)
    (sub / "bad.json").write_text(json.dumps({"gnoise": 0.1}))
    with pytest.raises(BenchConfigError, match="unknown device field 'gnoise'"):
        load_bench_config(bench)
    (sub / "bad.json").write_text(json.dumps({"g_on": 1e-8}))
    with pytest.raises(BenchConfigError, match=r"g_on = 1e-08: allowed a number > g_off"):
        load_bench_config(bench)
