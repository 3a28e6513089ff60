"""Believable French data for the sandbox companies: plan comptable, suppliers, customers, TVA, journals."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, insert, select

from sandbox.models import SandboxClient, SandboxCompany, SandboxItem
from webapp.extensions import db

COMPANIES = [
    ("cmp-boulangerie-martin", "Boulangerie Martin SARL", "732829320"),
    ("cmp-atelier-dupont", "Atelier Dupont & Fils SAS", "552100554"),
    ("cmp-cabinet-rousseau", "Cabinet Médical Rousseau", "443061841"),
    ("cmp-transports-lemoine", "Transports Lemoine EURL", "418306447"),
]

ACCOUNTS = [
    ("401000", "Fournisseurs"),
    ("401100", "Fournisseurs - achats de biens et prestations"),
    ("404000", "Fournisseurs d'immobilisations"),
    ("411000", "Clients"),
    ("421000", "Personnel - rémunérations dues"),
    ("431000", "Sécurité sociale"),
    ("445620", "TVA déductible sur immobilisations"),
    ("445660", "TVA déductible sur autres biens et services"),
    ("445662", "TVA déductible intracommunautaire"),
    ("445710", "TVA collectée"),
    ("445200", "TVA due intracommunautaire"),
    ("467000", "Autres comptes débiteurs ou créditeurs"),
    ("512000", "Banque"),
    ("530000", "Caisse"),
    ("580000", "Virements internes"),
    ("601000", "Achats stockés - matières premières"),
    ("602100", "Achats stockés - matières consommables"),
    ("604000", "Achats d'études et prestations de services"),
    ("606100", "Fournitures non stockables (eau, énergie)"),
    ("606300", "Fournitures d'entretien et de petit équipement"),
    ("606400", "Fournitures administratives"),
    ("607000", "Achats de marchandises"),
    ("611000", "Sous-traitance générale"),
    ("613200", "Locations immobilières"),
    ("613500", "Locations mobilières"),
    ("615000", "Entretien et réparations"),
    ("616000", "Primes d'assurances"),
    ("618100", "Documentation générale"),
    ("622600", "Honoraires"),
    ("623000", "Publicité, publications, relations publiques"),
    ("624100", "Transports sur achats"),
    ("625100", "Voyages et déplacements"),
    ("625600", "Missions"),
    ("625700", "Réceptions"),
    ("626000", "Frais postaux et de télécommunications"),
    ("627000", "Services bancaires et assimilés"),
    ("628100", "Concours divers (cotisations)"),
    ("635100", "Cotisation foncière des entreprises"),
    ("641000", "Rémunérations du personnel"),
    ("645100", "Cotisations à l'URSSAF"),
    ("661100", "Intérêts des emprunts et dettes"),
    ("671200", "Pénalités et amendes"),
    ("701000", "Ventes de produits finis"),
    ("706000", "Prestations de services"),
    ("707000", "Ventes de marchandises"),
    ("708500", "Ports et frais accessoires facturés"),
    ("758000", "Produits divers de gestion courante"),
]

SUPPLIERS = [
    "EDF Entreprises",
    "Orange Business",
    "Metro France",
    "Bureau Vallée",
    "La Poste Solutions Business",
    "Moulins Soufflet",
    "Grands Moulins de Paris",
    "Transgourmet France",
    "Brake France",
    "Engie Pro",
    "Veolia Eau",
    "Axa France IARD",
    "Manutan",
    "Lyreco France",
    "Free Pro",
    "SFR Business",
    "Boulanger Pro",
    "Leroy Merlin Pro",
    "Würth France",
    "Fiducial Expertise",
    "Garage du Centre",
    "Imprimerie Lefèvre",
    "Nettoyage Services Plus",
    "Sécuritas France",
    "Coopérative Laitière du Val",
    "Minoterie Dupuis",
    "Cafés Richard",
    "Emballages Girard SARL",
    "Transports Rapides du Sud",
    "Location Matériel Pro",
]

CUSTOMERS = [
    "Mairie de Villeneuve",
    "Restaurant Le Bon Goût",
    "Hôtel des Voyageurs",
    "Traiteur Saveurs d'Antan",
    "Collège Jean Moulin",
    "Épicerie Fine Delmas",
    "Café de la Gare",
    "Comité d'entreprise Airbus",
    "Brasserie du Port",
    "Crèche Les Petits Loups",
    "Association Sportive Municipale",
    "SARL Les Délices de Marie",
    "Clinique Saint-Joseph",
    "Camping Les Pins",
    "Lycée Victor Hugo",
    "Maison de retraite Les Tilleuls",
    "Boucherie Charcuterie Roux",
    "Fromagerie Bernard",
    "Théâtre Municipal",
    "Golf Club du Lac",
]

TAX_RATES = [
    ("TVA20", "TVA 20 %", "20"),
    ("TVA10", "TVA 10 %", "10"),
    ("TVA55", "TVA 5,5 %", "5.5"),
    ("TVA21", "TVA 2,1 %", "2.1"),
    ("TVA0", "Exonéré (0 %)", "0"),
    ("AUTOLIQ", "Autoliquidation 20 %", "20"),
]

TRACKING = [
    ("Magasin centre-ville", "Établissement"),
    ("Magasin de la gare", "Établissement"),
    ("Livraisons", "Activité"),
    ("Traiteur", "Activité"),
    ("Boutique en ligne", "Activité"),
]

PAYMENT_METHODS = [
    ("BQ1", "Crédit Agricole - compte courant"),
    ("BQ2", "Banque Populaire - compte professionnel"),
    ("CB", "Carte bancaire"),
    ("CAI", "Caisse"),
    ("PRE", "Prélèvement"),
]

LEGAL_FORMS = ["SARL", "SAS", "SA", "EURL", "SASU", "SNC"]


def siren_from(seed: int) -> str:
    """A nine-digit SIREN whose Luhn checksum holds, derived from `seed`."""
    base = f"{seed % 10**8:08d}"
    for last in range(10):
        candidate = base + str(last)
        total = 0
        for index, char in enumerate(reversed(candidate)):
            digit = int(char)
            if index % 2 == 1:
                digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
            total += digit
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def vat_from_siren(siren: str) -> str:
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def _party(kind: str, index: int, name: str, company_index: int) -> dict[str, Any]:
    siren = siren_from(
        310_000_00 + company_index * 1_000_003 + index * 7919 + (0 if kind == "suppliers" else 500)
    )
    prefix = "F" if kind == "suppliers" else "C"
    return {
        "kind": kind,
        "external_id": f"{kind[:3]}-{index:06d}",
        "code": f"{prefix}{index:05d}",
        "name": name,
        "siren": siren,
        "vat_number": vat_from_siren(siren),
        "extras": {"email": f"compta@{_slug(name)}.fr", "country": "FR"},
    }


def _slug(name: str) -> str:
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_name.lower() if c.isalnum())[:30] or "societe"


def company_items(company_index: int) -> Iterator[dict[str, Any]]:
    for number, name in ACCOUNTS:
        account_type = (
            "expense" if number.startswith("6") else "revenue" if number.startswith("7") else "balance"
        )
        yield {
            "kind": "accounts",
            "external_id": f"acc-{number}",
            "code": number,
            "name": name,
            "extras": {"type": account_type, "reverse_charge": number in ("445662", "445200")},
        }
    for index, name in enumerate(SUPPLIERS, start=1):
        yield _party("suppliers", index, name, company_index)
    for index, name in enumerate(CUSTOMERS, start=1):
        yield _party("customers", index, name, company_index)
    for code, name, rate in TAX_RATES:
        yield {"kind": "tax_rates", "external_id": f"tax-{code}", "code": code, "name": name, "rate": rate}
    for index, (name, axis) in enumerate(TRACKING, start=1):
        yield {
            "kind": "tracking_categories",
            "external_id": f"trk-{index:03d}",
            "code": None,
            "name": name,
            "extras": {"axis": axis},
        }
    for code, name in PAYMENT_METHODS:
        yield {"kind": "payment_methods", "external_id": f"pay-{code}", "code": code, "name": name}


def seed_sandbox(
    client_id: str, client_secret: str, redirect_uris: list[str] | None = None, *, owner: str | None = None
) -> bool:
    """Create the demo companies with their lists, and Raccord's OAuth client. Idempotent. Companies
    that belong to nobody yet are given to `owner` (never taken from another)."""
    client = db.session.get(SandboxClient, client_id)
    if client is None:
        db.session.add(
            SandboxClient(
                client_id=client_id,
                client_secret=client_secret,
                name="Raccord",
                redirect_uris=redirect_uris or [],
            )
        )
    else:
        client.client_secret = client_secret
    created = False
    for index, (company_id, name, siren) in enumerate(COMPANIES):
        existing = db.session.get(SandboxCompany, company_id)
        if existing is not None:
            if existing.owner is None and owner is not None:
                existing.owner = owner
            continue
        created = True
        db.session.add(SandboxCompany(id=company_id, name=name, siren=siren, owner=owner))
        db.session.flush()
        rows = [
            {"company_id": company_id, "active": True, "extras": {}, **item} for item in company_items(index)
        ]
        db.session.execute(insert(SandboxItem), rows)
    db.session.commit()
    return created


def generate_items(company_id: str, kind: str, count: int) -> int:
    """Add `count` generated suppliers or customers (up to 200 000), in batches."""
    start = (
        db.session.scalar(
            select(func.count())
            .select_from(SandboxItem)
            .where(SandboxItem.company_id == company_id, SandboxItem.kind == kind)
        )
        or 0
    )
    rng = random.Random(f"{company_id}-{kind}-{start}")
    batch: list[dict[str, Any]] = []
    made = 0
    for offset in range(count):
        index = start + offset + 1
        trade, place, form = (
            rng.choice(_GENERATED_NAMES),
            rng.choice(_GENERATED_PLACES),
            rng.choice(LEGAL_FORMS),
        )
        name = f"{trade} {place} {index} {form}"
        party = _party(kind, index, name, zlib.crc32(company_id.encode()) % 97)
        party["external_id"] = f"{kind[:3]}-g{index:07d}"
        batch.append({"company_id": company_id, "active": True, **party})
        if len(batch) >= 5000:
            db.session.execute(insert(SandboxItem), batch)
            made += len(batch)
            batch = []
    if batch:
        db.session.execute(insert(SandboxItem), batch)
        made += len(batch)
    db.session.commit()
    return made


_GENERATED_NAMES = [
    "Menuiserie",
    "Plomberie",
    "Électricité",
    "Boulangerie",
    "Transports",
    "Imprimerie",
    "Garage",
    "Pâtisserie",
    "Pharmacie",
    "Librairie",
    "Bâtiment",
    "Peinture",
    "Informatique",
    "Conseil",
    "Nettoyage",
]
_GENERATED_PLACES = [
    "du Centre",
    "de la Gare",
    "des Alpes",
    "du Littoral",
    "de Bretagne",
    "de Provence",
    "du Val de Loire",
    "de Normandie",
    "d'Occitanie",
    "du Nord",
]
