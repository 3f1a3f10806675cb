"""Which TensorFlow ops a SavedModel would run, and whether each is one inference uses.

A SavedModel is a graph, and graphs can do anything TensorFlow can: write files
(``WriteFile``), read them, call Python (``PyFunc``). So before any of it runs, the ops that
loading and scoring run are collected from the graph (pure protobuf, nothing executed): every
node that the fetched tensors and ops depend on, by data or control edge, and every function
these call, transitively. Each must be on :data:`ALLOWED`, the ops of inference models;
anything else is refused, naming the op.

Feeds are followed as TensorFlow prunes: a fed tensor replaces that one output, not its node,
so the node still runs (with its control inputs) when anything uses another of its outputs or
waits on it. A function named anywhere in an attribute, at any depth (a ``func`` attribute's
own attributes fill a callee's placeholders), counts as called. A
function name the file does not define is refused: it cannot be reasoned about. The saving
half of the graph (``SaveV2``, which writes checkpoints) is never fetched, so it is not looked
at.
"""

from __future__ import annotations

from mnistkit.read.errors import ModelError

ALLOWED = frozenset((
    # structure, calls and control flow
    "Const", "Identity", "IdentityN", "NoOp", "Placeholder", "PlaceholderWithDefault",
    "PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While",
    "StatelessWhile", "Case", "StatelessCase", "Switch", "Merge", "Enter", "Exit",
    "NextIteration", "LoopCond", "StopGradient", "PreventGradient", "Snapshot", "EnsureShape",
    "Assert", "CheckNumerics",
    # variables, restored from the model's own variables/ folder
    "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp", "VariableV2",
    "Variable", "Assign", "RestoreV2", "RestoreSlice", "ShardedFilename", "StringJoin",
    "StaticRegexFullMatch", "DisableCopyOnRead",
    # lookup tables filled from tensors (TF1 exports map class ids to names)
    "HashTable", "HashTableV2", "InitializeTable", "InitializeTableV2", "LookupTableFind",
    "LookupTableFindV2", "LookupTableImport", "LookupTableImportV2", "LookupTableSizeV2",
    # arithmetic
    "Add", "AddV2", "AddN", "Sub", "Mul", "MulNoNan", "Div", "RealDiv", "DivNoNan", "FloorDiv",
    "FloorMod", "Maximum", "Minimum", "Neg", "Abs", "Exp", "Log", "Log1p", "Sqrt", "Rsqrt",
    "Square", "SquaredDifference", "Pow", "Reciprocal", "Inv", "Sign", "Floor", "Ceil", "Round",
    "Tanh", "Sigmoid", "Erf", "Mean", "Sum", "Max", "Min", "Prod", "All", "Any", "ArgMax",
    "ArgMin", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum", "Cumsum",
    "Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual", "LogicalAnd",
    "LogicalOr", "LogicalNot", "Select", "SelectV2", "ClipByValue", "Cast", "BiasAdd",
    # neural network layers
    "Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput", "MaxPool", "MaxPoolV2",
    "AvgPool", "MaxPool3D", "AvgPool3D", "Relu", "Relu6", "Elu", "Selu", "LeakyRelu",
    "Softplus", "Softsign", "Softmax", "LogSoftmax", "FusedBatchNorm", "FusedBatchNormV2",
    "FusedBatchNormV3", "LRN", "TopKV2", "FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxArgs",
    # shapes and layout
    "Reshape", "Shape", "ShapeN", "Size", "Rank", "ExpandDims", "Squeeze", "Transpose",
    "ConcatV2", "Concat", "Pack", "Unpack", "Split", "SplitV", "Slice", "StridedSlice", "Gather",
    "GatherV2", "GatherNd", "Tile", "Pad", "PadV2", "MirrorPad", "Fill", "ZerosLike",
    "OnesLike", "Range", "BroadcastTo", "BroadcastArgs", "BroadcastGradientArgs", "OneHot",
    "Where", "ReverseV2", "ResizeBilinear", "ResizeNearestNeighbor", "SpaceToDepth",
    "DepthToSpace", "SpaceToBatchND", "BatchToSpaceND",
    # random numbers (dropout's training branch, traced beside the inference one)
    "RandomUniform", "RandomStandardNormal", "TruncatedNormal", "RandomUniformInt",
    "StatelessRandomUniformV2", "StatelessRandomNormalV2", "StatelessRandomGetKeyCounter",
    "StatelessRandomGetKeyCounterAlg", "StatelessRandomUniform", "StatelessRandomNormal",
))

# Ops that reach outside the process: named as such in the row
TOUCH_THE_WORLD = frozenset((
    "WriteFile", "ReadFile", "SaveV2", "Save", "SaveSlices", "MergeV2Checkpoints",
    "MatchingFiles", "PrintV2", "Print", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "ImmutableConst", "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
    "WriteSummary", "WriteScalarSummary", "CreateSummaryFileWriter", "TFRecordReaderV2",
    "FixedLengthRecordReaderV2", "WholeFileReaderV2", "DebugIdentityV2", "DebugIdentityV3",
))


def check_ops(graph_def, roots: list[str], fed: tuple[str, ...] = ()) -> set[str]:
    """Raise :class:`ModelError` unless every op that running ``roots`` (tensor or node names
    of the top-level graph) with the tensors ``fed`` given can reach is on :data:`ALLOWED`.
    Returns the op types seen."""
    functions = {function.signature.name: function for function in graph_def.library.function}
    seen, called = set(), []
    for node in reachable(graph_def, roots, fed):
        seen.update([node.op] if node.op not in functions else [])
        called += _calls(node, functions)
    done = set()
    while called:
        name = called.pop()
        if name in done:
            continue
        done.add(name)
        for node in functions[name].node_def:
            seen.update([node.op] if node.op not in functions else [])
            called += _calls(node, functions)
    for op in sorted(seen):
        if op not in ALLOWED:
            why = ("touches the world" if op in TOUCH_THE_WORLD
                   else "is not one inference models use")
            raise ModelError(f"SavedModel uses op {op}, which {why}: refused")
    return seen


def reachable(graph_def, roots: list[str], fed: tuple[str, ...] = ()) -> list:
    """The top-level nodes that computing ``roots`` runs, the tensors ``fed`` given: an edge
    from a fed tensor leads nowhere, a control edge or another output's edge to its node does."""
    nodes = {node.name: node for node in graph_def.node}
    given = {_tensor_name(tensor) for tensor in fed}
    reached, pending = {}, [root for root in roots if _tensor_name(root) not in given]
    while pending:
        name = _node_name(pending.pop())
        if name in reached:
            continue
        if name not in nodes:
            raise ModelError(f"the SavedModel's graph names node {name!r}, which it does not "
                             "hold: refused")
        reached[name] = nodes[name]
        pending += [source for source in nodes[name].input if _tensor_name(source) not in given]
    return list(reached.values())


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":")[0]


def _tensor_name(edge: str) -> str:
    """``node:k`` for a data edge (``node`` means ``node:0``); a control edge stays ``^node``,
    which no feed replaces."""
    return edge if edge.startswith("^") or ":" in edge else f"{edge}:0"


def _calls(node, functions: dict) -> list[str]:
    """The library functions a node calls: by its op (a function called directly) or named in
    any of its attributes, at any depth (``f`` of PartitionedCall, If's branches, While's body,
    and the functions these are given as attributes of their own)."""
    names = [node.op] if node.op in functions else []
    pending = list(node.attr.values())
    while pending:
        value = pending.pop()
        for named in ([value.func] if value.HasField("func") else []) + list(value.list.func):
            names.append(named.name)
            pending += list(named.attr.values())
    for name in names:
        if name not in functions:
            raise ModelError(f"SavedModel node {node.name!r} calls function {name!r}, which "
                             "the file does not define: refused")
    return names
