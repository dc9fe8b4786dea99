"""What keras-seq does before it trusts a file or folder that came from outside.

Everything keras-seq reads (artifacts, run folders, recipes, CSVs) may be
hostile. This module holds the checks and the careful writers that the rest
of the package calls (SECURITY.md says what they guarantee and what not):

- `plain_name` / `inside`: a name recorded in a file stays inside its folder
  and never crosses a symlink;
- `artifact_sha256`: the hash a manifest or model card records, never
  through a symlink;
- `check_zip_members`: a zip archive (`.keras`, a checkpoint) is measured from
  its directory before anything is extracted;
- `check_savedmodel`: every op a SavedModel can run is on an allowlist of
  compute ops, before TensorFlow loads it;
- `check_onnx`: an ONNX model uses only the default domain, keras-seq's opset
  range and no external data;
- `write_file_atomically`: files written outside a staged folder appear whole
  or not at all;
- `folder_lock`: one writer at a time per run folder.

Only `keras_seq.errors` is imported at module level; TensorFlow and ONNX are
imported inside the checks that need them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from keras_seq.errors import KerasSeqError

# === Names and symlinks ===


def is_folder_name(value) -> bool:
    """Letters, digits, '-' and '_' only: safe as one folder name.

    Example:
    >>> is_folder_name("lstm-v2"), is_folder_name("../x"), is_folder_name("")
    (True, False, False)
    """
    return isinstance(value, str) and bool(value) and value.replace("-", "").replace("_", "").isalnum()


def plain_name(name) -> bool:
    """A relative POSIX path of plain parts: no '..', no '.', no absolute path, no backslash.

    Example:
    >>> plain_name("export/model.onnx"), plain_name("../etc/passwd"), plain_name("/etc/passwd")
    (True, False, False)
    """
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and all(part not in ("", ".", "..") for part in name.split("/"))


def inside(folder: Path, name: str, what: str = "file") -> Path:
    """`folder / name`, refused unless `name` is plain and no part of it below `folder` is a symlink.

    Raises:
        KerasSeqError: `name` leaves the folder, or a symlink stands where
            keras-seq's file or folder belongs.
    """
    if not plain_name(name):
        raise KerasSeqError(
            f"{folder} names a {what} {name[:80]!r} outside the folder. Refusing to read it; the folder may have "
            "been tampered with."
        )
    path = folder
    for part in PurePosixPath(name).parts:
        path = path / part
        refuse_symlink(path)
    return path


def refuse_symlink(path: Path) -> None:
    """Refuse a symlink where keras-seq reads or writes its own file or folder."""
    if path.is_symlink():
        raise KerasSeqError(
            f"{path} is a symlink; keras-seq neither reads nor writes through symlinks inside a run or export "
            "folder. Replace it with a real file or folder."
        )


# === JSON files that keras-seq reads from folders (config, manifest, model card) ===

MAX_JSON_BYTES = 16 << 20  # keras-seq writes a few kilobytes


def read_text_bounded(path: Path, limit: int = MAX_JSON_BYTES) -> str:
    """A small text file's contents, refused (before reading) when it is larger than `limit` bytes."""
    size = path.stat().st_size
    if size > limit:
        raise KerasSeqError(f"{path} holds {size:,} bytes; keras-seq writes at most a few kilobytes there. Refusing to read it.")
    return path.read_text(encoding="utf-8")


# === Hashes of files and folders (manifests, model cards) ===


def artifact_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder (every file's relative path and content, in order).

    Raises:
        KerasSeqError: the path is, or a folder holds, a symlink (keras-seq
            never writes one, and never reads through one).
    """
    path = Path(path)
    refuse_symlink(path)
    if path.is_file():
        return _file_sha256(path)
    files = []
    for folder, names, file_names in os.walk(path):  # never into a symlinked folder
        for name in names + file_names:
            refuse_symlink(Path(folder) / name)
        files += [Path(folder) / name for name in file_names]
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_sha256(file)}\n".encode())
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# === Zip archives (.keras, .npz) ===

MAX_ARCHIVE_BYTES = 8 << 30  # 8 GiB uncompressed in all
MAX_CONFIG_BYTES = 16 << 20  # a .keras config.json or metadata.json
MAX_COMPRESSION_RATIO = 200  # beyond this, a member larger than 1 MiB is a zip bomb


def check_zip_members(path: Path, small: tuple[str, ...] = (), allowed=None) -> None:
    """Refuse an archive whose members' uncompressed sizes (from its directory) are beyond sane bounds.

    Args:
        path: Path. The zip archive.
        small: tuple of str. Members that hold text read into memory (a
            config), bounded by `MAX_CONFIG_BYTES`.
        allowed: callable or None. `allowed(name)` is True for each member
            name the archive may hold. Defaults to any plain name.

    Raises:
        KerasSeqError: not a zip archive, a member name that is not allowed,
            or sizes beyond the bounds.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise KerasSeqError(f"{path} is not a readable zip archive ({exc}). Restore the file or write it again.") from None
    total = 0
    for member in members:
        name = member.filename.rstrip("/") if member.is_dir() else member.filename
        if not plain_name(name) or (allowed is not None and not member.is_dir() and not allowed(name)):
            raise KerasSeqError(f"{path} holds an unexpected member {member.filename[:80]!r}. Refusing to load it.")
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        too_big = member.filename in small and member.file_size > MAX_CONFIG_BYTES
        if too_big or (member.file_size > 1 << 20 and ratio > MAX_COMPRESSION_RATIO) or total > MAX_ARCHIVE_BYTES:
            raise KerasSeqError(
                f"{path} would inflate {member.filename!r} to {member.file_size:,} bytes "
                f"(from {member.compress_size:,}; {total:,} in all so far): refusing an archive that large. "
                "Restore the file or write it again."
            )


def read_npz(source, limit: int, where: str = "the archive") -> dict:
    """The arrays of a `.npz` archive (a path or a file object), each checked before it is read.

    Nothing is unpickled (`allow_pickle=False`), the members' sizes in all
    are at most `limit` bytes (from the zip directory), and no member's
    header may claim more data than the member holds, so a crafted header
    cannot make numpy allocate more than the archive's own size.

    Raises:
        KerasSeqError: naming `where` and what was wrong, in one line.
    """
    import numpy as np

    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise KerasSeqError(f"{where} is not a readable .npz archive ({type(exc).__name__}).") from None
    arrays = {}
    with archive:
        members = archive.infolist()
        total = sum(member.file_size for member in members)
        if total > limit:
            raise KerasSeqError(f"{where} would inflate to {total:,} bytes; at most {limit:,} are expected there. "
                                "Refusing to read it.")
        for member in members:
            name = member.filename
            if not name.endswith(".npy") or not plain_name(name) or "/" in name:
                raise KerasSeqError(f"{where} holds an unexpected member {name[:60]!r}. Refusing to read it.")
            try:
                with archive.open(member) as stream:
                    version = np.lib.format.read_magic(stream)
                    shape, _, dtype = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)(stream)
                    if dtype.hasobject or int(np.prod(shape, dtype=object)) * dtype.itemsize > member.file_size:
                        raise ValueError(f"its header claims {shape} of {dtype}")
                with archive.open(member) as stream:
                    arrays[name[: -len(".npy")]] = np.lib.format.read_array(stream, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                raise KerasSeqError(f"{where}: member {name[:60]!r} is not a plain array ({str(exc)[:80]}). "
                                    "Refusing to read it.") from None
    return arrays


# === SavedModel: the ops it can run ===

# Ops that TensorFlow's checkpoint functions use: allowed only in functions reached from the SavedModel's
# saver (saver_def), which `tf.saved_model.load` does not run (it restores variables itself).
CHECKPOINT_OPS = frozenset({
    "DisableCopyOnRead", "MergeV2Checkpoints", "RestoreV2", "SaveV2", "Select", "ShardedFilename",
    "StaticRegexFullMatch", "StringJoin",
})

# Every op type that keras-seq's exports of every arch reach from their serving signature or the object
# graph (collected by tests/test_safety.py's exports, minus anything that reads, writes or formats files,
# prints, or runs Python). A test fails when an export needs an op that is not here.
COMPUTE_OPS = frozenset({
    # The scaling and transforms inside the model (keras_seq.models.layers): statistics, log and exp, running sums.
    "Abs", "Cumsum", "Exp", "Log", "Maximum", "Mean", "Sqrt", "Square", "ZerosLike",
    # The series index input (keras_seq.models.layers.known_series): which indices name a known series.
    "Greater", "LessEqual",
    # The quantile head (keras_seq.models.layers.ordered_quantiles): positive gaps between levels.
    "Softplus",
    # Conformalized quantile intervals (keras_seq.models.layers.ConformalIntervals): kept nested around the median.
    "Minimum",
    # Masked windows (`pad`, `missing` mask; keras_seq.models.layers.PrepareWindow): which values are missing, their
    # column's mean, and the last observed value before each (`last_observed`).
    "IsNan", "Sum", "Equal", "LogicalNot",
    # An ensemble's median (keras_seq.models.layers.CombineMembers): the members' forecasts sorted.
    "Neg", "TopKV2",
    # ES-RNN (keras_seq.models.layers.Dilate, Reseasonalise; scalers.holt_winters): dilated steps, the first season.
    "Pad", "ClipByValue", "Unpack",
    "AddV2", "AssignVariableOp", "BiasAdd", "Cast", "ConcatV2", "Const", "Fill", "FloorMod", "GatherV2",
    "GreaterEqual", "Identity", "Less", "LogicalAnd", "MatMul", "Max", "Mul", "NoOp", "OnesLike", "Pack",
    "Placeholder", "Prod", "Range", "ReadVariableOp", "RealDiv", "Reshape", "ReverseV2", "SelectV2", "Shape",
    "Sigmoid", "Split", "Squeeze", "StatefulPartitionedCall", "StatelessRandomGetKeyCounter",
    "StatelessRandomUniformV2", "StridedSlice", "Sub", "Tanh", "TensorListFromTensor", "TensorListGetItem",
    "TensorListReserve", "TensorListSetItem", "TensorListStack", "Transpose", "VarHandleOp",
    "VarIsInitializedOp", "While",
})

# Substrings of op types that must never be on COMPUTE_OPS (files, printing, Python, summaries, datasets).
FORBIDDEN_OP_WORDS = ("File", "Save", "Restore", "Checkpoint", "Sharded", "Print", "PyFunc", "Summary", "Dataset",
                      "Reader", "Writer", "Debug", "StringJoin", "StringFormat", "Regex", "Iterator", "Remote",
                      "Send", "Recv", "ImmutableConst", "LoadAndRemap", "Table", "Lookup")


MAX_GRAPH_BYTES = 256 << 20


def savedmodel_ops(path: Path) -> dict[str, set[str]]:
    """The op types a SavedModel holds: `{"compute": ..., "checkpoint": ...}`.

    `checkpoint` holds the ops of functions reached only from the saver's
    save and restore nodes; `compute` holds everything else: the main graph
    outside the saver and every other function in the library (the serving
    signature, the object graph's functions, resource initializers).
    """
    from tensorflow.core.protobuf import saved_model_pb2

    folder = Path(path)
    if (folder / "saved_model.pbtxt").exists():
        raise KerasSeqError(f"{folder} holds a saved_model.pbtxt; keras-seq writes only saved_model.pb. Refusing to load it.")
    graph = folder / "saved_model.pb"
    if graph.stat().st_size > MAX_GRAPH_BYTES:  # the weights live in variables/; the graph itself is small
        raise KerasSeqError(f"{graph} is larger than {MAX_GRAPH_BYTES:,} bytes. Refusing to load it.")
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(graph.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise KerasSeqError(f"{folder}/saved_model.pb is not a readable SavedModel ({type(exc).__name__}).") from None
    ops = {"compute": set(), "checkpoint": set()}
    for meta_graph in proto.meta_graphs:
        functions = {f.signature.name: f for f in meta_graph.graph_def.library.function}
        nodes = {node.name: node for node in meta_graph.graph_def.node}
        saver = meta_graph.saver_def
        saver_nodes = _ancestors(nodes, [saver.save_tensor_name, saver.restore_op_name, saver.filename_tensor_name])
        reached = {"compute": set(), "checkpoint": set()}
        for node in nodes.values():
            context = "checkpoint" if node.name in saver_nodes else "compute"
            ops[context].add(node.op)
            reached[context] |= _called(node)
        compute = _closure(functions, reached["compute"] | (set(functions) - _closure(functions, reached["checkpoint"])))
        for name, function in functions.items():
            context = "compute" if name in compute else "checkpoint"
            ops[context].update(node.op for node in function.node_def)
        missing = (reached["compute"] | reached["checkpoint"]) - set(functions)
        if missing:
            raise KerasSeqError(f"{folder} calls functions it does not define ({sorted(missing)[0]}). Refusing to load it.")
    return ops


def _ancestors(nodes: dict, tensors: list[str]) -> set[str]:
    """Names of the main-graph nodes that the given tensors depend on (data and control inputs)."""
    stack = [t.lstrip("^").split(":")[0] for t in tensors if t]
    seen = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
    return seen


def _called(node) -> set[str]:
    """Functions a node calls through any function-valued attribute (`f`, `body`, `then_branch`, ...)."""
    names = set()
    for value in node.attr.values():
        if value.HasField("func"):
            names.add(value.func.name)
        names.update(f.name for f in value.list.func)
    return names


def _closure(functions: dict, names: set[str]) -> set[str]:
    """`names` and every function they call, transitively."""
    stack, seen = list(names), set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in getattr(functions.get(name), "node_def", ()):
            stack.extend(_called(node))
    return seen


def check_savedmodel(path: Path) -> None:
    """Refuse a SavedModel that holds any op outside keras-seq's allowlists, naming the op.

    Raises:
        KerasSeqError: an op outside `COMPUTE_OPS` where the model computes,
            or outside `COMPUTE_OPS | CHECKPOINT_OPS` in its saver.
    """
    ops = savedmodel_ops(path)
    bad = sorted(ops["compute"] - COMPUTE_OPS) or sorted(ops["checkpoint"] - COMPUTE_OPS - CHECKPOINT_OPS)
    bad.sort(key=lambda op: not any(word in op for word in FORBIDDEN_OP_WORDS))  # the file and Python ops first
    if bad:
        raise KerasSeqError(
            f"{path} holds the TensorFlow op {bad[0]}"
            + (f" (and {len(bad) - 1} more not on keras-seq's allowlist)" if len(bad) > 1 else "")
            + ", which a keras-seq export never needs: a SavedModel is a program, and this one may read or write "
            "files. Refusing to run it."
        )


# === ONNX ===

ONNX_OPSETS = range(13, 24)  # the default-domain opsets keras-seq's exports are written with (tf2onnx)
MAX_ONNX_BYTES = 2 << 30


def check_onnx(path: Path) -> None:
    """Refuse an ONNX model with external data, a custom domain, or an opset keras-seq does not write.

    Raises:
        KerasSeqError: naming what was found.
    """
    import onnx

    if path.stat().st_size > MAX_ONNX_BYTES:
        raise KerasSeqError(f"{path} is larger than {MAX_ONNX_BYTES:,} bytes. Refusing to load it.")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise KerasSeqError(f"{path} is not a loadable ONNX model ({type(exc).__name__}).") from None
    for opset in model.opset_import:  # tf2onnx imports ai.onnx.ml too; no node may use it (checked below)
        if opset.domain not in ("", "ai.onnx", "ai.onnx.ml"):
            raise KerasSeqError(
                f"{path} imports the ONNX domain {opset.domain[:60]!r}; keras-seq writes only the default domain. "
                "Refusing to load it."
            )
        if opset.domain != "ai.onnx.ml" and opset.version not in ONNX_OPSETS:
            raise KerasSeqError(
                f"{path} uses ONNX opset {opset.version}; keras-seq writes opsets {ONNX_OPSETS[0]}..{ONNX_OPSETS[-1]}. "
                "Refusing to load it."
            )
    if len(model.functions):
        raise KerasSeqError(f"{path} defines ONNX functions ({model.functions[0].name[:60]!r}); keras-seq writes none. Refusing to load it.")
    for tensor in _onnx_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise KerasSeqError(
                f"{path} keeps tensor {tensor.name[:60]!r} in external data, which would be read from another file. "
                "keras-seq writes self-contained ONNX files; refusing to load it."
            )
    for node in _onnx_nodes(model.graph):
        if node.domain not in ("", "ai.onnx"):
            raise KerasSeqError(f"{path} has an op {node.op_type[:60]!r} of the domain {node.domain[:60]!r}; keras-seq writes only the default domain. Refusing to load it.")
    check_onnx_sizes(model, path)


MAX_ONNX_ELEMENTS = 1 << 27  # one tensor of a fixed shape: 512 MiB of float32 (an export's largest is its weights)
MAX_LOOP_TRIPS = 1 << 20  # a Loop's fixed trip count (keras-seq's loops run once per window step)


def check_onnx_sizes(model, path: Path) -> None:
    """Refuse an ONNX model whose fixed shapes or loop counts would take unbounded memory or time: a tensor whose
    shape ONNX's own shape inference fixes (constants propagated) beyond `MAX_ONNX_ELEMENTS`, or a `Loop` whose
    trip count is a constant beyond `MAX_LOOP_TRIPS`. Shapes that depend on the input are bounded by the card's
    window and the forecast's time limit instead."""
    import numpy as np
    import onnx

    constants = {t.name: t for t in model.graph.initializer}
    constants |= {n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"}
    for node in _onnx_nodes(model.graph):
        count = constants.get(node.input[0]) if node.op_type == "Loop" and node.input and node.input[0] else None
        trips = 0 if count is None else int(np.max(onnx.numpy_helper.to_array(count), initial=0))
        if trips > MAX_LOOP_TRIPS:
            raise KerasSeqError(f"{path} has a Loop of {trips:,} trips; keras-seq's exports loop at most once per "
                                "window step. Refusing to load it.")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a graph ONNX cannot infer is bounded at run time instead
        return
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            size = int(np.prod([d.dim_value for d in dims], dtype=object))
            if size > MAX_ONNX_ELEMENTS:
                raise KerasSeqError(f"{path} makes a tensor {value.name[:60]!r} of {size:,} values, beyond keras-seq's "
                                    f"{MAX_ONNX_ELEMENTS:,}: it would take that much memory. Refusing to load it.")


def _onnx_nodes(graph):
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from _onnx_nodes(sub)


def _onnx_tensors(graph):
    yield from graph.initializer
    yield from (sparse.values for sparse in graph.sparse_initializer)
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from _onnx_tensors(sub)


# === Writing ===

_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "permission denied", errno.ENOENT: "the folder does not exist",
                errno.ENOTDIR: "a part of the path is not a folder", errno.EFBIG: "the file is too large"}


def write_error(path, exc: OSError) -> KerasSeqError:
    """One line for an OSError met while writing `path`."""
    reason = _DISK_ERRORS.get(exc.errno) or exc.strerror or type(exc).__name__
    return KerasSeqError(f"cannot write {path}: {reason}. Nothing was left half-written; free space or choose another place.")


def write_file_atomically(path: str | os.PathLike, write, binary: bool = False) -> None:
    """Write a file through `write(stream)` into a temporary file beside it, then rename it into place.

    On any failure (a full disk included) the temporary file is removed and
    `path` is as it was. The stream is UTF-8 text, or bytes with `binary`.

    Raises:
        KerasSeqError: the folder is missing or not writable, the disk is
            full, or `path` exists and is not a regular file.
    """
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise KerasSeqError(f"{path} exists and is not a regular file. Give a new file name.")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    WRITING.add(temporary)
    try:
        with os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; the user's file is not
        with _signals_held():  # a signal's handler sees the file either not yet there or counted as published
            os.replace(temporary, path)
            PUBLISHED[0] += 1
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    finally:
        WRITING.discard(temporary)


WRITING: set = set()  # temporary files `write_file_atomically` is writing now: `end_now` removes them
PUBLISHED = [0]  # files `write_file_atomically` has put in place in this process, counted


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM held back from this thread for the block (delivered when it ends)."""
    import signal

    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def end_now(message: str, code: int) -> None:
    """End the process at once: the temporary files being written removed, one line on stderr, exit `code`.

    For a signal or a time limit in a command that has nothing else to clean up (predict): nothing unwinds
    through imports or a runtime's threads, so the answer is the same wherever it meets the process.
    """
    for temporary in list(WRITING):
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    os.write(2, f"Error: {message}\n".encode())
    os._exit(code)


# === One writer per run folder ===


@contextlib.contextmanager
def folder_lock(folder: Path, command: str):
    """Hold an exclusive `flock` on `folder` itself (no lock file is written), or refuse at once.

    Raises:
        KerasSeqError: another keras-seq command holds the folder.
    """
    try:
        descriptor = lock_folder(folder)
    except OSError as exc:
        raise KerasSeqError(f"cannot open {folder}: {exc.strerror}.") from None
    if descriptor is None:
        raise KerasSeqError(
            f"another keras-seq command is writing into {folder} (export, evaluate or resume). "
            f"Wait for it to finish, then run `keras-seq {command}` again."
        )
    try:
        yield
    finally:
        os.close(descriptor)  # releases the lock


def lock_folder(folder: Path) -> int | None:
    """An open descriptor of `folder` holding an exclusive `flock` on it, or None if another process holds one.

    The lock lasts until the descriptor is closed, or the process ends (so a
    killed process never leaves a stale lock).
    """
    import fcntl

    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor
