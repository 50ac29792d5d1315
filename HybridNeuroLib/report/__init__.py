"""Reports a person reads, and the scene Slicer opens: what ``run``, ``treat`` and ``demo`` write.

    >>> from HybridNeuroLib.report.summary import REPORT_FORMAT
    >>> REPORT_FORMAT
    'hybridneuro-report/1'

``figures`` (forecast overlays in three planes, lesion volume over time with bands),
``scenario_figure`` (treatment scenarios compared), ``summary`` (``report.json``),
``scene`` (the ``.mrb`` Slicer scene bundle of a forecast).
"""
