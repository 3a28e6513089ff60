"""The accounting software Raccord knows, as shown in 'Logiciels disponibles'."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Software:
    key: str
    name: str
    summary: str


CATALOGUE: dict[str, Software] = {
    "sandbox": Software(
        key="sandbox",
        name="Compta Démo",
        summary="Logiciel comptable de démonstration intégré à Raccord, pour essayer et reproduire.",
    ),
}


def software_name(key: str) -> str:
    software = CATALOGUE.get(key)
    return software.name if software else key


def available_software() -> list[Software]:
    return list(CATALOGUE.values())
