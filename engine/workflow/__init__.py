"""The workflow adapter: the only package of onewindow that imports SpiffWorkflow.

Public surface (see ``api`` for the data types):

* ``validate_document(data, filename)`` -> ``DocumentReport``: per process, executable or the problems
  by element id and line (raises ``UnsafeDocument`` for unsafe / non-XML / non-BPMN input).
* ``load_definitions(data, filename)`` -> ``{process_id: Definition}``: full validation and sandbox
  check of every expression (``UnsafeDocument`` / ``InvalidModel`` / ``UnsafeExpression``).
* ``Definition`` (``spec_json`` / ``from_spec_json``) and ``Runtime`` (one live instance).
"""

from .api import (
    CAMUNDA_NS,
    OW_NS,
    DocumentReport,
    PendingMessage,
    PendingTimer,
    ProcessReport,
    ReadyTask,
    StartedEventSubprocess,
    TaskMeta,
)
from .budget import StepLimits
from .definition import Definition, load_definitions, load_document_set
from .parser import MAX_DEADLINE_DAYS, MAX_DEADLINE_HOURS
from .runtime import Runtime
from .sandbox import check_source as check_expression
from .validator import validate_document, validate_documents
from .xml import document_text, parse_xml

__all__ = [
    "CAMUNDA_NS",
    "MAX_DEADLINE_DAYS",
    "MAX_DEADLINE_HOURS",
    "OW_NS",
    "Definition",
    "DocumentReport",
    "PendingMessage",
    "PendingTimer",
    "ProcessReport",
    "ReadyTask",
    "Runtime",
    "StartedEventSubprocess",
    "StepLimits",
    "TaskMeta",
    "check_expression",
    "document_text",
    "load_definitions",
    "load_document_set",
    "parse_xml",
    "validate_document",
    "validate_documents",
]
