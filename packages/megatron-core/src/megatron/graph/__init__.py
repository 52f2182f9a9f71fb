"""The graph of a pipeline: nodes (values), calls of layers on them, and the checked
:class:`Graph` from inputs to outputs that pipelines, planners and plugins walk."""

from megatron.graph.call import Call, Mode
from megatron.graph.names import Names, automatic_name, join_graphs
from megatron.graph.node import Input, Node, as_node_list, common_rows, describe_rows
from megatron.graph.topology import Graph, needed_inputs, upstream_calls

__all__ = [
    "Call",
    "Graph",
    "Input",
    "Mode",
    "Names",
    "Node",
    "as_node_list",
    "automatic_name",
    "common_rows",
    "describe_rows",
    "join_graphs",
    "needed_inputs",
    "upstream_calls",
]
