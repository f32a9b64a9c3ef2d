"""The electronic licence library (电子证照库).

- ``licence.checkdigits``: GB 11643 resident IDs, GB 32100 credit codes (with GB 11714), ISO 7064 MOD 37,36.
- ``licence.types``: the catalogue of licence types and their face-data schema (``types.json``).
- ``licence.model``: ``LicenceRecord``, its identifier, status history and integrity hash.
- ``licence.tables``: SQLAlchemy Core tables on their own ``metadata``.
- ``licence.library``: ``LicenceLibrary`` (issue, read, verify, suspend/reinstate/revoke/cancel, expire).
- ``licence.importer`` / ``licence.cli``: bulk import of paper-era licences from CSV or JSON.
  ``licence.import_reader`` reads the file as a stream with size limits, ``licence.import_rows``
  validates one row.
- ``licence.demo``: a deterministic fictional dataset.

Nothing here imports ``api`` or the engine's persistence; only ``engine.errors``.
"""
