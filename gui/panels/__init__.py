"""The main window's panels: I-V sweep, crossbar map, calibration, inference."""
