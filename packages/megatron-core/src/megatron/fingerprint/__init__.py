"""Fingerprints: a digest of what a pipeline computes, stable across processes.

``transform(cache=True)`` serves a stored row only when the fingerprint stored with it equals
the pipeline's own, so the fingerprint must change whenever the outputs could. It covers the
pipeline's inputs (name, shape, dtype and columns); the graph; each layer's class; every
hyperparameter, by value; and each stateful layer's ``state_token``, which every fit renews.

Code is digested by what it computes, not by name or place, each part by the same rules,
recursively and safe from cycles:

- a function: its code (constants and nested functions included), defaults, closure values,
  its own attributes (``f.k``), the module-level names it reads, and the attributes it reads
  of modules of your own, through module-level names, closures or imports inside it
  (``helpers.FACTOR``, ``pkg.sub.f``, ``from helpers import f``);
- a class of your own: along its bases, every member of each class's ``__dict__``: methods,
  static and class methods and properties as functions, and class attributes by value.

State a function keeps for itself (a captured or global name it assigns, calls
``append``/``update``/... on, or stores into) counts by name only: a log or a memo is not an
input. A container read through a method that returns its content (``setdefault``, ``pop``)
is an input. Values are read as follows:

- data (None, numbers, strings, bytes, numpy scalars, dtypes and arrays, and lists, tuples,
  dicts and sets of data): by content;
- code from installed libraries, the standard library and megatron itself (numpy ufuncs,
  builtins, classes and functions of installed packages): by qualified name and the library's
  version; a function a library made (a closure) by its code and what it captured;
- modules: by name, and a module of your own by the attributes the code reads of it; a
  module an import inside a function names, by whether it is imported yet and the same;
- any other object: by its class and its attributes, read by the same rules, up to a budget.
  An object whose state cannot be read that way (some of it lives in C, or there is too much)
  is known by its identity in this process only: rows computed with it are never served to
  another process. For a stateful layer's own hyperparameters (a Keras model) its ``repr``
  stands in instead: the layer's state token already tells its fits apart.

Computing a fingerprint walks all of that; :class:`GraphFingerprint` keeps the result with
the slots it read (each hyperparameter and input declaration, a function's code, defaults,
closure cells, attributes and globals, the module attributes and class members read, the
items of mutable lists, dicts and sets) and recomputes only when one of them holds another
object. What it cannot see is an object changed in place behind one of those slots (an array
a function reads from a global, edited element by element), nor what code reads by other
means than names (``globals()[name]``, ``getattr(module, name)``, ``os.environ``, files);
layers keep their own hyperparameters read-only for that reason (:mod:`megatron.layers.frozen`).

The package's modules: :mod:`~megatron.fingerprint.graph` (the pipeline's fingerprint and its
memo), :mod:`~megatron.fingerprint.walk` (how each kind of value is read),
:mod:`~megatron.fingerprint.functions` and :mod:`~megatron.fingerprint.bytecode` (code, and
what it reads by name), :mod:`~megatron.fingerprint.members` (classes),
:mod:`~megatron.fingerprint.libraries` (installed code, by name and version),
:mod:`~megatron.fingerprint.digest` and :mod:`~megatron.fingerprint.probes` (the hash and the
slots read).
"""

from megatron.fingerprint.graph import GraphFingerprint
from megatron.fingerprint.probes import Probe
from megatron.fingerprint.walk import BUDGET, function_digest, value_fingerprint

__all__ = ["BUDGET", "GraphFingerprint", "Probe", "function_digest", "value_fingerprint"]
