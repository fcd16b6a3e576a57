"""Which instruments are there: discovery and identity of a bench's instruments.

* :func:`discover` — what this computer sees: every VISA resource of
  ``pyvisa.ResourceManager(visa_library).list_resources()``, each asked ``*IDN?`` through the
  Keithley 6487 driver (:attr:`instruments.keithley6487.Keithley6487.identity`), and every
  Digilent device pydwf enumerates (serial, name).
* :func:`session_identities` — the connected bench's own instruments through its drivers (on
  the simulated bench these are the twins, which say so).

Both run on the worker thread (they talk to instruments); :func:`show_identities` shows the
result in a non-modal table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PyQt6.QtWidgets import QDialog, QLabel, QTableWidgetItem, QVBoxLayout, QWidget

from instruments.errors import SafetyLimits

__all__ = [
    "InstrumentIdentity",
    "discover",
    "format_identities",
    "session_identities",
    "show_identities",
]

# Identification only: nothing is sourced, but the driver needs limits; the smallest ones.
_IDENTIFY_LIMITS = SafetyLimits(max_voltage=0.1, max_compliance=2e-9)


@dataclass(frozen=True)
class InstrumentIdentity:
    """One instrument found: where (VISA resource or AD2 serial), what answered, or why not."""

    resource: str
    kind: str  # "VISA" | "AD2" | "Keithley 6487" …
    identity: str  # the instrument's answer ("" when it did not answer)
    error: str = ""
    simulated: bool = False

    def line(self) -> str:
        """One line for the log."""
        sim = " [simulated twin]" if self.simulated else ""
        what = self.identity if not self.error else f"no identity ({self.error})"
        return f"{self.kind} at {self.resource}: {what}{sim}"


def _visa(visa_library: str, timeout_ms: int) -> list[InstrumentIdentity]:
    import pyvisa

    from instruments.keithley6487 import Keithley6487

    try:
        rm = pyvisa.ResourceManager(visa_library)
    except Exception as exc:  # noqa: BLE001 - no VISA library: say so, go on with the AD2
        return [InstrumentIdentity("VISA", "VISA", "", f"no VISA library: {exc}")]
    out = []
    try:
        resources = rm.list_resources()
    except Exception as exc:  # noqa: BLE001
        return [InstrumentIdentity("VISA", "VISA", "", f"cannot list resources: {exc}")]
    for res in resources:
        inst = None
        try:
            inst = Keithley6487(
                res, limits=_IDENTIFY_LIMITS, visa_library=visa_library, timeout=timeout_ms
            )
            ident = inst.identity
            out.append(
                InstrumentIdentity(
                    res, "VISA", f"{ident.manufacturer} {ident.model}, serial {ident.serial}"
                )
            )
        except Exception as exc:  # noqa: BLE001 - an instrument that is not a 6487 answers oddly
            out.append(InstrumentIdentity(res, "VISA", "", str(exc).splitlines()[0][:160]))
        finally:
            if inst is not None:
                try:
                    inst.adapter.close()
                except Exception:  # noqa: BLE001
                    pass
    if not resources:
        out.append(InstrumentIdentity("VISA", "VISA", "", "no VISA resources found"))
    return out


def _dwf_devices(library: Any, simulated: bool = False) -> list[InstrumentIdentity]:
    out = []
    enum = library.deviceEnum
    n = int(enum.enumerateDevices())
    for i in range(n):
        out.append(
            InstrumentIdentity(
                f"serial {enum.serialNumber(i)}",
                "AD2",
                str(enum.deviceName(i)),
                simulated=simulated,
            )
        )
    if not out:
        out.append(InstrumentIdentity("USB", "AD2", "", "no Digilent device found"))
    return out


def _ad2() -> list[InstrumentIdentity]:
    try:
        import pydwf

        library = pydwf.DwfLibrary()
    except Exception as exc:  # noqa: BLE001 - no WaveForms runtime on this computer
        return [InstrumentIdentity("USB", "AD2", "", f"WaveForms runtime not available: {exc}")]
    try:
        return _dwf_devices(library)
    except Exception as exc:  # noqa: BLE001
        return [InstrumentIdentity("USB", "AD2", "", str(exc))]


def discover(visa_library: str = "", timeout_ms: int = 2000) -> list[InstrumentIdentity]:
    """Every VISA resource (with its ``*IDN?`` through the 6487 driver) and every AD2 this
    computer sees. ``visa_library``: pyvisa's library argument ("" = the default; e.g.
    ``"path/to/keithley6487.yaml@sim"`` for pyvisa-sim)."""
    return _visa(visa_library, timeout_ms) + _ad2()


def session_identities(session: Any) -> list[InstrumentIdentity]:
    """The connected bench's instruments, asked through its drivers (the 6487's ``*IDN?``,
    the AD2's enumeration). A bench without drivers (the physics simulation) says so."""
    backend = session.backend
    sim = bool(session.is_simulated)
    keithley = getattr(backend, "keithley", None)
    ad2 = getattr(backend, "ad2", None)
    if keithley is None and ad2 is None:
        return [
            InstrumentIdentity(
                session.name, "bench", "physics simulation (no instrument drivers)", simulated=sim
            )
        ]
    out = []
    if keithley is not None:
        try:
            ident = keithley.identity
            out.append(
                InstrumentIdentity(
                    str(session.config_dict.get("instruments", {}).get("keithley_resource", "")),
                    "Keithley 6487",
                    f"{ident.manufacturer} {ident.model}, serial {ident.serial}, "
                    f"firmware {ident.firmware}",
                    simulated=sim,
                )
            )
        except Exception as exc:  # noqa: BLE001
            out.append(InstrumentIdentity("?", "Keithley 6487", "", str(exc), simulated=sim))
    library = getattr(ad2, "_dwf", None)
    if library is not None:
        try:
            out.extend(_dwf_devices(library, simulated=sim))
        except Exception as exc:  # noqa: BLE001
            out.append(InstrumentIdentity("?", "AD2", "", str(exc), simulated=sim))
    return out


def format_identities(found: Sequence[InstrumentIdentity]) -> list[str]:
    """Log lines, one per instrument."""
    return [f"Instrument: {i.line()}" for i in found] or ["No instrument found"]


def show_identities(parent: QWidget, found: Sequence[InstrumentIdentity]) -> QDialog:
    """A non-modal table of ``found`` (kept on ``parent.identity_dialog``)."""
    from gui.widgets import table

    dlg = QDialog(parent)
    dlg.setWindowTitle("Instruments")
    v = QVBoxLayout(dlg)
    sim = any(i.simulated for i in found)
    v.addWidget(
        QLabel(
            "The connected SIMULATED bench's instrument twins"
            if sim
            else "Instruments this computer sees (VISA resources asked *IDN?, Digilent devices)"
        )
    )
    t = table(["kind", "where", "identity / problem"], stretch=2, sort=None)
    t.setRowCount(len(found))
    for r, i in enumerate(found):
        for c, text in enumerate(
            (i.kind, i.resource, (i.identity or i.error) + (" [simulated]" if i.simulated else ""))
        ):
            t.setItem(r, c, QTableWidgetItem(text))
    v.addWidget(t)
    dlg.resize(720, 240)
    dlg.show()
    parent.identity_dialog = dlg  # type: ignore[attr-defined]
    return dlg
