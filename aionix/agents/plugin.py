"""Registers the machine-native APIs: capabilities, simulation and the Copilot."""

from __future__ import annotations

from dataclasses import dataclass

from aionix.agents.copilot import Copilot
from aionix.agents.routes import api
from aionix.agents.simulate import Simulator
from aionix.agents.skills import Skills
from aionix.runtime import Runtime, ServicePlugin


@dataclass
class AgentsService:
    skills: Skills
    simulator: Simulator
    copilot: Copilot


def create(rt: Runtime) -> ServicePlugin:
    skills = Skills(rt)
    simulator = Simulator(skills)
    svc = AgentsService(skills, simulator, Copilot(rt, simulator))
    return ServicePlugin(name="agents", service=svc, api=api)
