"""The data layer: PTB-XL / MIMIC-IV-ECG readers, preprocessing, cache, conditions, datasets, DataModule.

Modules (import them directly; this package imports nothing heavy):

* :mod:`~ecgtwin.data.wfdb_reader` / :mod:`~ecgtwin.data.ptbxl` / :mod:`~ecgtwin.data.mimic`: records and tables
* :mod:`~ecgtwin.data.preprocess`, :mod:`~ecgtwin.data.heartrate`: signal processing, heart rate
* :mod:`~ecgtwin.data.cache`: the memory-mapped one-time cache
* :mod:`~ecgtwin.data.conditions`: ``LabelVocabulary``, ``DemographicsNormalizer``
* :mod:`~ecgtwin.data.splits`, :mod:`~ecgtwin.data.datasets`, :mod:`~ecgtwin.data.datamodule`
"""
