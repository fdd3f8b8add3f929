"""Read a Forge ``<Name>Builder.swift`` with tree-sitter-swift and build the Forge graph from it.

The interpreter knows the subset of Swift that Forge network builders are written in, both the
project's generated builders and the Forge fork's hand-edited ones:

* ``let``/``var`` bindings (with optional type annotations), Swift scoping of ``do { }`` blocks
  (a ``let x = ... --> x`` inside the block shadows the layer ``x`` declared outside);
* literals, tuples, arrays, ``.member`` enum values, calls with labelled arguments, and the
  ``-->`` operator (left-associative, like Forge's ChainPrecedence);
* ``Model(input:output:)``, a builder's ``outputs`` array and ``x.imageIsTemporary = false``
  (the tensors read after a run), the builder's ``name`` property and the ``compile`` closure's
  ``ParameterLoaderBundle`` (prefix, suffix ``type == .weights ? a : b``, ext).

What a Forge initialiser means — its parameters, defaults and types, the layer it makes, the
``MPSCNNNeuron`` classes and the custom kernels — comes from the op registry (core.forge_ops), the
same definitions the converter emits from.  Anything else is a :class:`ReferenceDeviceError`
naming the file, line and construct.
"""
from pathlib import Path

from core.forge_ops import (DEVICE, KernelCall, Neuron, SignatureError, kernel_for_swift,
                            neuron_kind_for_swift, neuron_kinds, op_for_swift)
from core.forge_ops.signature import Param, ParamType, Signature

from . import forge
from .forge import ReferenceDeviceError

_NIL = None
_TENSOR = ParamType("Tensor", lambda v: isinstance(v, forge.Tensor), str, "must be a tensor")
_MODEL = Signature("Model", Param("input", _TENSOR), Param("output", _TENSOR))


class Enum(str):
    """A Swift implicit-member value like ``.same`` (kept as its member name)."""


class BuilderProgram:
    """What a builder file defines: the model name, the graph and the parameter file convention."""

    def __init__(self, path, class_name, name, model, loader, warnings):
        self.path, self.class_name, self.name = path, class_name, name
        self.model, self.loader, self.warnings = model, loader, warnings


class ParameterLoaderSpec:
    """``ParameterLoaderBundle(name:count:prefix:suffix:ext:)`` → ``<prefix><layer><suffix>.<ext>``."""

    def __init__(self, prefix="", suffix_weights="", suffix_biases="", ext="", line=None,
                 loader="ParameterLoaderBundle"):
        self.prefix, self.suffix_weights, self.suffix_biases = prefix, suffix_weights, suffix_biases
        self.ext, self.line, self.loader = ext, line, loader

    def file_name(self, layer_name: str, kind: str) -> str:
        suffix = self.suffix_weights if kind == "weights" else self.suffix_biases
        return f"{self.prefix}{layer_name}{suffix}" + (f".{self.ext}" if self.ext else "")


# --------------------------------------------------------------------------------------------


def _parser():
    import tree_sitter_swift
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_swift.language()))


def _line(node) -> int:
    return node.start_point[0] + 1


def _text(node) -> str:
    return node.text.decode("utf-8")


def _named(node):
    return [c for c in node.children if c.is_named and c.type not in ("comment", "multiline_comment")]


def _first_error(node):
    if node.type == "ERROR" or node.is_missing:
        return node
    for c in node.children:
        if c.has_error:
            found = _first_error(c)
            if found is not None:
                return found
    return node if node.has_error else None


class Scope:
    def __init__(self, parent=None):
        self.parent, self.vars = parent, {}

    def lookup(self, name):
        scope = self
        while scope is not None:
            if name in scope.vars:
                return True, scope.vars[name]
            scope = scope.parent
        return False, None


class Interpreter:
    def __init__(self, path, source: bytes):
        self.path = str(path)
        self.source = source
        self.warnings = []
        self.model = None
        self.outputs = None

    # -- errors ----------------------------------------------------------------------------
    def error(self, node, message) -> ReferenceDeviceError:
        line = _line(node) if node is not None else "?"
        return ReferenceDeviceError(f"{self.path}:{line}: {message}")

    def unsupported(self, node, what=None):
        snippet = _text(node).strip().splitlines()[0][:80] if node is not None else ""
        return self.error(node, f"{what or 'unsupported Swift construct'} `{snippet}` "
                                f"({node.type}); the reference device knows the Forge builder "
                                "subset only (see device_pull/reference_device/swift.py)")

    # -- entry ------------------------------------------------------------------------------
    def run(self) -> BuilderProgram:
        tree = _parser().parse(self.source)
        root = tree.root_node
        if root.has_error:
            bad = _first_error(root)
            raise self.error(bad, f"Swift syntax error near `{_text(bad)[:60].strip()}`; the "
                                  "builder does not parse")
        cls = self._find_class(root)
        class_name = _text(next(c for c in cls.children if c.type == "type_identifier"))
        body = next(c for c in cls.children if c.type == "class_body")
        name, name_node = None, None
        init = compile_fn = None
        for member in _named(body):
            if member.type == "property_declaration":
                pname, value = self._property_literal(member)
                if pname == "name":
                    name, name_node = value, member
            elif member.type == "init_declaration" and init is None:
                init = member
            elif member.type == "function_declaration":
                fname = next((c for c in member.children if c.type == "simple_identifier"), None)
                if fname is not None and _text(fname) == "compile":
                    compile_fn = member
        if init is None:
            raise self.error(cls, f"class {class_name} has no init(device:) that builds the model")
        scope = Scope()
        scope.vars["device"] = DEVICE
        self.self_name = name
        body_node = next(c for c in init.children if c.type == "function_body")
        self._exec_block(body_node, scope)
        if self.self_name is not None:
            name = self.self_name
        if name is None:
            raise self.error(cls, f"class {class_name} defines no `name` property "
                                  "(e.g. `public let name = \"resnet_50\"`); dump files need it")
        if not isinstance(name, str):
            raise self.error(name_node, "the `name` property must be a string literal")
        if self.model is None:
            raise self.error(init, "init(device:) never assigns `model = Model(input:output:)`")
        if compile_fn is None:
            raise self.error(cls, f"class {class_name} has no compile(inflightBuffers:) function "
                                  "with the parameter loader closure")
        loader = self._loader(compile_fn)
        if self.outputs is not None:
            self.model.outputs = self.outputs
        return BuilderProgram(self.path, class_name, name, self.model, loader, self.warnings)

    def _find_class(self, root):
        classes = [n for n in _named(root) if n.type == "class_declaration"]
        if not classes:
            raise self.error(root, "no class declaration found; expected a `<Name>Builder` class")
        for c in classes:
            body = next((x for x in c.children if x.type == "class_body"), None)
            if body is not None and any(m.type == "init_declaration" for m in body.children):
                return c
        return classes[0]

    def _property_literal(self, node):
        pattern = next((c for c in node.children if c.type == "pattern"), None)
        if pattern is None:
            return None, None
        value_nodes = [c for c in _named(node)
                       if c.type not in ("modifiers", "value_binding_pattern", "pattern",
                                         "type_annotation")]
        if not value_nodes:
            return _text(pattern), None
        v = value_nodes[-1]
        if v.type == "line_string_literal":
            return _text(pattern), self._string(v)
        return _text(pattern), None

    # -- statements -------------------------------------------------------------------------
    def _exec_block(self, node, scope):
        for child in _named(node):
            if child.type == "statements":
                for st in _named(child):
                    self._exec(st, scope)
            else:
                self._exec(child, scope)

    def _exec(self, node, scope):
        t = node.type
        if t == "property_declaration":
            pattern = next((c for c in node.children if c.type == "pattern"), None)
            if pattern is None or len(_named(pattern)) != 1 or _named(pattern)[0].type != "simple_identifier":
                raise self.unsupported(node, "binding pattern")
            value_nodes = [c for c in _named(node)
                           if c.type not in ("modifiers", "value_binding_pattern", "pattern",
                                             "type_annotation")]
            if len(value_nodes) != 1:
                raise self.unsupported(node, "declaration without a single initial value")
            scope.vars[_text(pattern)] = self._eval(value_nodes[0], scope)
        elif t == "do_statement":
            inner = Scope(scope)
            for child in _named(node):
                if child.type == "statements":
                    for st in _named(child):
                        self._exec(st, inner)
                elif child.type == "catch_block":
                    pass
                else:
                    raise self.unsupported(child)
        elif t == "assignment":
            target = _text(_named(node)[0]).replace(" ", "")
            value = _named(node)[-1]
            if target in ("self.device", "device"):
                return
            if target in ("model", "self.model"):
                m = self._eval(value, scope)
                if not isinstance(m, forge.Model):
                    raise self.error(node, "`model` must be assigned a Model(input:output:)")
                self.model = m
                return
            if target in ("outputs", "self.outputs"):
                v = self._eval(value, scope)
                if not isinstance(v, list) or not v or \
                        not all(isinstance(t, forge.Tensor) for t in v):
                    raise self.error(node, "`outputs` must be assigned an array of tensors")
                self.outputs = v
                return
            if target.endswith(".imageIsTemporary"):
                self._set_image_is_temporary(node, target, value, scope)
                return
            if target in ("name", "self.name"):
                v = self._eval(value, scope)
                if not isinstance(v, str):
                    raise self.error(node, "`name` must be a string")
                self.self_name = v
                return
            found, _ = scope.lookup(target)
            if found:
                s = scope
                while target not in s.vars:
                    s = s.parent
                s.vars[target] = self._eval(value, scope)
                return
            raise self.unsupported(node, "assignment to an unknown variable")
        elif t == "call_expression" and _text(node).startswith(("super.init", "print(")):
            return
        elif t in ("import_declaration",):
            return
        else:
            # An expression statement: evaluate it for its effect on the graph (e.g. `x --> y`).
            self._eval(node, scope)

    def _set_image_is_temporary(self, node, target, value, scope):
        """``x.imageIsTemporary = false``: tensor ``x`` gets a real MPSImage (Tensor.swift)."""
        variable = target[:-len(".imageIsTemporary")]
        found, tensor = scope.lookup(variable)
        if not found or not isinstance(tensor, forge.Tensor):
            raise self.error(node, f"`{variable}` is not a tensor; imageIsTemporary is a "
                                   "property of Forge tensors")
        flag = self._eval(value, scope)
        if not isinstance(flag, bool):
            raise self.error(node, "imageIsTemporary must be assigned true or false")
        tensor.image_is_temporary = flag

    # -- expressions ------------------------------------------------------------------------
    def _eval(self, node, scope):
        t = node.type
        if t == "integer_literal":
            return int(_text(node).replace("_", ""), 0)
        if t == "real_literal":
            return float(_text(node).replace("_", ""))
        if t == "boolean_literal":
            return _text(node) == "true"
        if t == "nil_literal":
            return _NIL
        if t == "line_string_literal":
            return self._string(node)
        if t == "simple_identifier":
            name = _text(node)
            found, value = scope.lookup(name)
            if not found:
                raise self.error(node, f"`{name}` is not defined here")
            return value
        if t == "self_expression":
            raise self.unsupported(node)
        if t == "prefix_expression":
            kids = node.children
            op = _text(kids[0])
            if op == "." and len(kids) == 2 and kids[1].type == "simple_identifier":
                return Enum(_text(kids[1]))
            if op in ("-", "+") and len(kids) == 2:
                v = self._eval(kids[1], scope)
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise self.unsupported(node, "sign applied to a non-number")
                return -v if op == "-" else v
            raise self.unsupported(node)
        if t == "navigation_expression":
            text = _text(node).replace(" ", "")
            if text == "self.device":
                return DEVICE
            kids = _named(node)
            if (len(kids) == 2 and kids[0].type == "simple_identifier"
                    and _text(kids[0]) in ("PaddingType", "MPSImageEdgeMode", "MergeOpType")):
                return Enum(_text(_named(kids[1])[0]))
            raise self.unsupported(node)
        if t == "tuple_expression":
            items = [self._eval(c, scope) for c in _named(node)]
            if len(items) == 1:
                return items[0]
            return tuple(items)
        if t == "array_literal":
            return [self._eval(c, scope) for c in _named(node)]
        if t == "infix_expression":
            return self._chain(node, scope)
        if t == "call_expression":
            return self._call(node, scope)
        if t == "as_expression":
            return self._eval(_named(node)[0], scope)
        raise self.unsupported(node)

    def _string(self, node):
        parts = []
        for c in node.children:
            if c.type == "line_str_text":
                parts.append(_text(c))
            elif c.type == "str_escaped_char":
                parts.append(_text(c).encode().decode("unicode_escape"))
            elif c.type == '"':
                continue
            else:
                raise self.unsupported(node, "string interpolation")
        return "".join(parts)

    def _flatten_chain(self, node, out):
        kids = node.children
        if (node.type == "infix_expression" and len(kids) == 3
                and kids[1].type == "custom_operator" and _text(kids[1]) == "-->"):
            self._flatten_chain(kids[0], out)
            self._flatten_chain(kids[2], out)
        elif node.type == "infix_expression":
            raise self.unsupported(node, "operator")
        else:
            out.append(node)

    def _chain(self, node, scope):
        """``a --> b --> c`` is ``(a --> b) --> c`` in Swift (tree-sitter nests it the other way)."""
        operands = []
        self._flatten_chain(node, operands)
        value = self._eval(operands[0], scope)
        if not isinstance(value, forge.Tensor):
            raise self.error(operands[0], f"`{_text(operands[0])[:40]}` is not a tensor; the "
                                          "left side of --> must be a tensor")
        for op in operands[1:]:
            layer = self._eval(op, scope)
            if not isinstance(layer, forge.Layer):
                raise self.error(op, f"`{_text(op)[:40]}` is not a layer; the right side of --> "
                                     "must be a layer")
            value = forge.connect(value, layer, line=_line(op))
        return value

    def _args(self, node, scope):
        suffix = next((c for c in node.children if c.type == "call_suffix"), None)
        positional, labelled = [], {}
        if suffix is None:
            return positional, labelled
        for part in _named(suffix):
            if part.type == "lambda_literal":
                raise self.unsupported(part, "trailing closure")
            if part.type != "value_arguments":
                raise self.unsupported(part)
            for arg in _named(part):
                if arg.type != "value_argument":
                    raise self.unsupported(arg)
                label = next((c for c in arg.children if c.type == "value_argument_label"), None)
                value_node = [c for c in _named(arg) if c.type != "value_argument_label"]
                if len(value_node) != 1:
                    raise self.unsupported(arg, "argument")
                value = self._eval(value_node[0], scope)
                if label is None:
                    if labelled:
                        raise self.error(arg, "unlabelled argument after a labelled one")
                    positional.append(value)
                else:
                    key = _text(label)
                    if key in labelled:
                        raise self.error(arg, f"argument `{key}:` given twice")
                    labelled[key] = value
        return positional, labelled

    def _bind(self, node, signature, positional, labelled) -> dict:
        try:
            return signature.bind(positional, labelled)
        except SignatureError as exc:
            raise self.error(node, str(exc)) from None

    def _call(self, node, scope):
        callee_node = node.children[0]
        if callee_node.type != "simple_identifier":
            raise self.unsupported(node, "call")
        callee = _text(callee_node)
        line = _line(node)
        positional, labelled = self._args(node, scope)
        if callee == _MODEL.callee:
            a = self._bind(node, _MODEL, positional, labelled)
            return forge.Model(a["input"], a["output"], line)
        if callee.startswith("MPSCNNNeuron"):
            kind = neuron_kind_for_swift(callee)
            if kind is None:
                raise self.error(node, f"unknown neuron `{callee}`; supported: "
                                       + ", ".join(k.swift_class for k in neuron_kinds()))
            a = self._bind(node, kind.signature, positional, labelled)
            return Neuron(kind.swift_suffix, **{p: a[p] for p in kind.parameters})
        op = op_for_swift(callee)
        if op is not None:
            arguments = op.from_call(callee, self._bind(node, op.signature_for(callee),
                                                        positional, labelled))
            return self._construct(node, op, arguments, line)
        kernel = kernel_for_swift(callee)
        if kernel is not None:
            return KernelCall(kernel, self._bind(node, kernel.signature, positional, labelled))
        if callee[:1].isupper() and "device" in labelled:
            raise self.error(node, f"unknown custom kernel `{callee}`; the reference device runs "
                                   "the kernels of core/forge_ops/kernels/ (Forge's own and the "
                                   "project's): add a module there with its numpy twin")
        raise self.error(node, f"unknown initializer or function `{callee}`; the reference device "
                               "knows the Forge fork's layers, MPSCNNNeuron classes and custom "
                               "kernels of the op registry (core/forge_ops)")

    def _construct(self, node, op, arguments, line):
        """The object a registered op's call makes: a layer, or a graph function's tensor."""
        if op.has_layer:
            for warning in op.parse_warnings(arguments):
                self.warnings.append(f"{self.path}:{line}: {warning}")
            return forge.Layer(op, arguments, line)
        if op.provides_texture:
            return forge.make_input(op, arguments, line)
        try:
            return forge.gather(op, arguments["tensors"], arguments["name"], line)
        except ReferenceDeviceError as exc:
            raise self.error(node, str(exc)) from None

    def _str(self, node, v, what):
        if not isinstance(v, str):
            raise self.error(node, f"`{what}:` must be a string literal")
        return str(v)

    # -- compile closure --------------------------------------------------------------------
    def _loader(self, fn):
        calls = []

        def walk(n):
            if n.type == "call_expression" and n.children[0].type == "simple_identifier":
                calls.append(n)
            for c in n.children:
                walk(c)

        walk(fn)
        loaders = [c for c in calls if _text(c.children[0]).startswith("ParameterLoader")]
        if not loaders:
            raise self.error(fn, "compile(inflightBuffers:) has no ParameterLoaderBundle(...) in "
                                 "its parameter closure; cannot tell the weight file names")
        call = loaders[0]
        kind = _text(call.children[0])
        if kind not in ("ParameterLoaderBundle", "ParameterLoaderBundleOrMemory"):
            raise self.error(call, f"{kind} is not supported; the reference device reads files "
                                   "the way ParameterLoaderBundle names them")
        scope = Scope()
        for v in ("name", "count", "type", "weights"):
            scope.vars[v] = Enum(v)
        suffix_node = None
        values = {}
        suffix = next((c for c in call.children if c.type == "call_suffix"), None)
        for part in _named(suffix):
            for arg in _named(part) if part.type == "value_arguments" else []:
                label = next((c for c in arg.children if c.type == "value_argument_label"), None)
                vnode = [c for c in _named(arg) if c.type != "value_argument_label"][0]
                if label is None:
                    continue
                key = _text(label)
                if key == "suffix":
                    suffix_node = vnode
                elif key in ("prefix", "ext"):
                    values[key] = self._str(vnode, self._eval(vnode, scope), key)
        sw = sb = ""
        if suffix_node is not None:
            if suffix_node.type == "ternary_expression":
                cond, yes, no = _named(suffix_node)
                ctext = _text(cond).replace(" ", "")
                a = self._str(yes, self._eval(yes, scope), "suffix")
                b = self._str(no, self._eval(no, scope), "suffix")
                if ctext in ("type==.weights", ".weights==type"):
                    sw, sb = a, b
                elif ctext in ("type==.biases", ".biases==type"):
                    sw, sb = b, a
                else:
                    raise self.unsupported(cond, "suffix condition")
            else:
                sw = sb = self._str(suffix_node, self._eval(suffix_node, scope), "suffix")
        return ParameterLoaderSpec(values.get("prefix", ""), sw, sb, values.get("ext", ""),
                                   _line(call), kind)


def parse_builder(path) -> BuilderProgram:
    """Read a builder ``.swift`` and return its name, Forge graph (uncompiled) and loader spec."""
    path = Path(path)
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ReferenceDeviceError(f"{path}: cannot read the builder ({exc.strerror})") from None
    return Interpreter(path, source).run()


def parse_builder_source(source: str, path="<builder>") -> BuilderProgram:
    """Same as :func:`parse_builder` for Swift source held in a string."""
    return Interpreter(path, source.encode("utf-8")).run()
