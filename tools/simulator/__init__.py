"""The Double-11 simulator (`make simulate`, docs/simulator.md): a seeded marketplace played
through a running platform's APIs over simulated days, deadlines firing on the virtual
clock, weeks closed, a live progress display and a report (HTML with charts, and JSON).

    from tools.simulator import ScenarioConfig, SimConfig, run_simulation
    figures = await run_simulation(SimConfig(ScenarioConfig(seed=11, orders=200, days=3)), platform)
"""
from tools.simulator.scenario import ScenarioConfig, plan
from tools.simulator.simulate import SimConfig, Simulation, run_simulation

__all__ = ["ScenarioConfig", "SimConfig", "Simulation", "plan", "run_simulation"]
