"""Issue 17, item 4: which bench is this? A SIMULATED banner and window title that stay after an
emergency stop, the device profile shown and selectable, Browse starting beside the example
benches, switching benches without disconnecting first, instrument discovery (pyvisa resources
asked ``*IDN?`` through the 6487 driver) and identities, and "open example bench"."""

from __future__ import annotations

from pathlib import Path

from conftest import REPO

from instruments.keithley6487 import SIM_DEFINITION
from lab import simulated_profiles


def sim_file(tmp_path: Path, name: str, profile: str) -> Path:
    text = (REPO / "crossbar" / "benches" / "sim.toml").read_text()
    text = text.replace('name = "sim"', f'name = "{name}"')
    text = text.replace('profile = "optimized"', f'profile = "{profile}"')
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_simulated_bench_says_so_even_after_an_emergency_stop(window) -> None:
    ch = window.chooser
    assert ch.banner.isVisible() and "SIMULATED" in ch.banner.text()
    assert "SIMULATED" in window.windowTitle() and "optimized" in window.windowTitle()
    assert ch.profile.isVisible() and ch.chosen_profile() == "optimized"  # the profile shown
    window.emergency_stop()
    assert "EMERGENCY STOP" in ch.status.text()
    assert ch.banner.isVisible() and "SIMULATED" in ch.banner.text()
    assert "SIMULATED" in window.windowTitle()
    window.acknowledge_stop()
    assert "SIMULATED" in ch.banner.text() and "connected" in ch.status.text()


def test_the_device_profile_is_selectable(window) -> None:
    ch = window.chooser
    assert set(simulated_profiles()) <= {ch.profile.itemData(i) for i in range(ch.profile.count())}
    assert ch.connect_button.text() == "Disconnect"
    old = window.session
    ch.set_profile("poor")
    assert ch.connect_button.text() == "Switch bench"
    ch.connect_button.click()  # no Disconnect first
    assert window.runner.wait_idle(120)
    assert old.closed and window.session is not old
    assert window.session.profile == "poor"
    assert window.session.config_dict["simulation"]["profile"] == "poor"
    assert "poor" in window.windowTitle()
    assert ch.connect_button.text() == "Disconnect"
    assert window.settings.get("bench/profile") == "poor"  # remembered


def test_switching_to_a_bench_file_without_disconnecting(window, tmp_path) -> None:
    path = sim_file(tmp_path, "bench-two", "typical")
    ch = window.chooser
    old = window.session
    ch.set_bench(str(path), "")  # "as in the file"
    assert ch.path.isEnabled() and ch.connect_button.text() == "Switch bench"
    ch.connect_button.click()
    assert window.runner.wait_idle(120)
    assert old.closed and old.datastore.closed
    s = window.session
    assert s.name == "bench-two" and s.profile == "typical" and s.is_simulated
    assert ch.chosen_profile() == "typical"  # the file's profile, shown
    assert "bench-two" in window.windowTitle() and "SIMULATED" in window.windowTitle()


def test_browse_starts_beside_the_example_benches(offline_window) -> None:
    start = Path(offline_window.chooser.browse_start())
    assert start != Path.home()
    assert (start / "example_hardware.toml").is_file()


def test_open_example_bench_copies_and_chooses_it(offline_window, tmp_path) -> None:
    out = offline_window.open_example_bench(tmp_path / "my_bench.toml")
    assert out.read_text() == (REPO / "crossbar" / "benches" / "example_hardware.toml").read_text()
    ch = offline_window.chooser
    assert ch.bench() == str(out) and ch.kind.currentIndex() == 1
    assert "keithley_resource" in offline_window.log_lines()[-1]


def test_instrument_discovery_asks_every_visa_resource(offline_window) -> None:
    w = offline_window
    assert w.discover_instruments(visa_library=f"{SIM_DEFINITION}@sim")
    assert w.runner.wait_idle(60)
    visa = [i for i in w.last_discovery if i.kind == "VISA"]
    assert {i.resource for i in visa} >= {"GPIB0::22::INSTR"}
    gpib = next(i for i in visa if i.resource == "GPIB0::22::INSTR")
    assert gpib.identity == "KEITHLEY INSTRUMENTS INC. 6487, serial 4126713"
    assert not gpib.simulated
    assert any(i.kind == "AD2" for i in w.last_discovery)  # found, or why not
    assert any("GPIB0::22::INSTR" in line for line in w.log_lines())
    t = w.identity_dialog.findChildren(type(w.calibration_panel.table))[0]
    assert t.rowCount() == len(w.last_discovery)


def test_identities_of_the_simulated_bench_come_from_its_twins(window) -> None:
    assert window.identify_bench()
    assert window.runner.wait_idle(60)
    found = window.last_discovery
    assert all(i.simulated for i in found)
    k = next(i for i in found if i.kind == "Keithley 6487")
    assert "6487" in k.identity and "4126713" in k.identity
    ad2 = next(i for i in found if i.kind == "AD2")
    assert ad2.identity == "Analog Discovery 2" and "210321ABCDEF" in ad2.resource
