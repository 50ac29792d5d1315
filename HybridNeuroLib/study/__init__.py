"""Study folders (``hybridneuro-study/1``): read, validate, write, register timepoints.

    >>> from HybridNeuroLib.study import read_study, write_study, register_study, StudyError
    >>> from HybridNeuroLib.study import FORMAT_ID
    >>> FORMAT_ID
    'hybridneuro-study/1'

``format`` holds the constants (modality keys, file suffixes), ``data`` the typed
:class:`Study` / :class:`Timepoint`, ``validate`` the checks that collect every problem
of a folder into one :class:`StudyError`, ``io`` reading and writing, ``registration``
the rigid alignment of later timepoints to the first one. Input folders are read-only.
"""

from HybridNeuroLib.study.data import Study, Timepoint
from HybridNeuroLib.study.format import FORMAT_ID, SEG_KEY, TISSUE_KEYS
from HybridNeuroLib.study.io import read_study, write_study
from HybridNeuroLib.study.registration import register_study
from HybridNeuroLib.study.validate import Problem, StudyError, validate_study

__all__ = ["FORMAT_ID", "SEG_KEY", "TISSUE_KEYS", "Problem", "Study", "StudyError",
           "Timepoint", "read_study", "register_study", "validate_study", "write_study"]
