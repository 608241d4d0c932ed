"""Wharf model worker: serves one MLflow pyfunc model, one Azure-style
scoring script, or one Azure-style batch driver to the Wharf server over a
Unix domain socket.

    python worker.py --socket PATH --mode pyfunc --model-dir DIR
    python worker.py --socket PATH --mode score --model-dir DIR \
        --code-dir DIR --scoring-script score.py
    python worker.py --socket PATH --mode batch --model-dir DIR \
        --code-dir DIR --scoring-script batch_driver.py
    python worker.py --socket PATH --mode zygote [--warm-model DIR ...]

The worker accepts exactly one connection, from the server that started it,
and then removes the socket file: it runs one request at a time (the GIL and
most model objects make in-process concurrency pointless or unsafe), so the
server scales by processes, and nothing else can reach a worker once its
server is connected. When that connection closes the worker exits.

Every message is a frame: a 13-byte header (payload length as uint32, kind
as one byte, request id as uint64, all big-endian) and the payload. The
server sends PREDICT frames whose payload is the request body; the worker
answers each with RESULT (JSON), INPUT_ERROR or MODEL_ERROR (JSON objects
with "type" and "message") carrying the same id. Before any of that the
worker sends one READY frame once the model is loaded or init() returned,
or one FATAL frame with the traceback, after which it exits with status 1.

Micro-batches: several requests answered in one frame. A pyfunc PREDICT
whose table carries "sizes" (the row count of each request merged into it,
in order) is scored in one predict() call and answered with a MULTI frame;
an EACH frame (score mode) carries several request bodies, each as a
uint32 length and the bytes, and run() gets them as one list. A MULTI
payload is one byte of flags (MULTI_UNMERGED: the worker scored each
request alone because the model's output did not have one row per input
row) and then, per request in order, a uint32 length, a kind (RESULT,
INPUT_ERROR or MODEL_ERROR) and the payload that kind would carry alone.

A pyfunc request may instead be {"parquet_file": PATH}: a batch
mini-batch the server wrote as a Parquet file, read here with pyarrow.

In batch mode a request is a JSON list of file paths (the mini-batch given
to the driver's run()), or {"table": PATH}, a CSV or Parquet file of rows
given to run() as a pandas DataFrame; the answer is a JSON list of strings,
one for each output row: see batch_rows. --program-args (a JSON list) is
the driver's sys.argv after its own path, and --row-format space writes
rows space-separated, as an Azure ML parallel job appends them.

In zygote mode the process is a warm parent rather than a worker: it
imports the libraries once (by loading each --warm-model and importing
pandas and pyarrow) and then forks workers on request, each in well under
a second instead of the several seconds an interpreter takes to import
mlflow and scikit-learn. See zygote() for its protocol.

Only the standard library is imported here; the model's own packages are
imported when the model is loaded. Python 3.8 or later.
"""

import argparse
import csv
import gc
import importlib
import importlib.util
import inspect
import io
import json
import logging
import math
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import traceback

HEADER = struct.Struct(">IBQ")

PREDICT = ord("P")
READY = ord("R")
RESULT = ord("O")
INPUT_ERROR = ord("B")
MODEL_ERROR = ord("E")
FATAL = ord("F")
EACH = ord("S")
MULTI = ord("M")

# A MULTI frame's flags.
MULTI_UNMERGED = 1

PART = struct.Struct(">IB")


class InputError(Exception):
    """The request body cannot be turned into model input: the caller's
    fault, not the model's."""


class Multi:
    """The answers to the requests of a micro-batch, in order: each a
    (kind, payload) pair as serve() would send it alone."""

    __slots__ = ("outcomes", "flags")

    def __init__(self, outcomes, flags=0):
        self.outcomes = outcomes
        self.flags = flags

    def pack(self):
        parts = [bytes((self.flags,))]
        for kind, payload in self.outcomes:
            parts.append(PART.pack(len(payload), kind))
            parts.append(payload)
        return b"".join(parts)


def outcome(fn):
    """Runs fn() for one request of a micro-batch and returns its (kind,
    payload), as serve() answers a request alone."""
    try:
        return RESULT, fn()
    except InputError as e:
        return INPUT_ERROR, error_payload(e)
    except Exception as e:
        traceback.print_exc()
        sys.stderr.flush()
        return MODEL_ERROR, error_payload(e)


def unpack_each(body):
    """The request bodies of an EACH frame."""
    bodies = []
    i, n = 0, len(body)
    while i < n:
        if i + 4 > n:
            raise ValueError("truncated micro-batch")
        (size,) = struct.unpack_from(">I", body, i)
        i += 4
        if i + size > n:
            raise ValueError("truncated micro-batch")
        bodies.append(body[i:i + size])
        i += size
    return bodies


def send(conn, kind, rid, payload):
    header = HEADER.pack(len(payload), kind, rid)
    if len(payload) < 65536:
        # One write for the common small answer; copying it is cheaper
        # than a second system call.
        conn.sendall(header + payload)
    else:
        conn.sendall(header)
        conn.sendall(payload)


def type_name(exc):
    t = type(exc)
    if t.__module__ in ("builtins", "__main__"):
        return t.__qualname__
    return t.__module__ + "." + t.__qualname__


def error_payload(exc, with_traceback=False):
    doc = {"type": type_name(exc), "message": str(exc)}
    if with_traceback:
        doc["traceback"] = traceback.format_exc()
    return json.dumps(doc).encode("utf-8")


def plain(obj):
    """Turns what models commonly return (numpy arrays and scalars, pandas
    frames and series) into types json can encode. Used as json's default
    hook, so it is only called for objects json does not know."""
    module = type(obj).__module__
    if module.startswith("pandas"):
        if hasattr(obj, "to_dict") and hasattr(obj, "columns"):
            return obj.to_dict(orient="records")
        if hasattr(obj, "tolist"):
            return obj.tolist()
    if module.startswith("numpy"):
        if hasattr(obj, "tolist"):
            # ndarray.tolist and numpy scalars' tolist give Python
            # ints and floats, so floats stay floats.
            return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


def finite(obj):
    """Returns obj with every NaN or infinity replaced by None, since JSON
    has no spelling for them (pandas writes them as null as well)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    try:
        converted = plain(obj)
    except TypeError:
        return obj
    return finite(converted)


def encode(result):
    try:
        text = json.dumps(result, default=plain, allow_nan=False)
    except ValueError:
        # Only non-finite floats get here: take the slow path that
        # rewrites them.
        text = json.dumps(finite(result), default=plain, allow_nan=False)
    return text.encode("utf-8")


def import_script(args):
    """Imports the user's script from the code folder the way Azure ML's
    inference server does, with AZUREML_MODEL_DIR set, and returns the
    module."""
    if args.model_dir:
        os.environ["AZUREML_MODEL_DIR"] = args.model_dir
    code_dir = os.path.abspath(args.code_dir or ".")
    script = os.path.join(code_dir, args.scoring_script)
    if not os.path.isfile(script):
        raise FileNotFoundError("scoring script %s not found in %s" % (args.scoring_script, code_dir))
    sys.path.insert(0, code_dir)
    script_dir = os.path.dirname(script)
    if script_dir != code_dir:
        sys.path.insert(1, script_dir)
    name = os.path.splitext(os.path.basename(script))[0]
    if not name.isidentifier():
        name = "score"
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs so that pickles and dataclasses defined in
    # the script can find their module.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_score(args):
    """Imports the scoring script and calls its init(); returns the
    per-request handler."""
    module = import_script(args)
    run = getattr(module, "run", None)
    if not callable(run):
        raise AttributeError("scoring script %s defines no run() function" % args.scoring_script)
    init = getattr(module, "init", None)
    if callable(init):
        init()

    def handle(body):
        # Flask, under Azure's server, decodes bodies the same way.
        result = run(body.decode("utf-8", "replace"))
        # Azure's server json.dumps whatever run returns, so a str
        # becomes a JSON string.
        return encode(result)

    def answers(texts):
        result = run(texts)
        if type(result).__module__.startswith(("numpy", "pandas")) and hasattr(result, "tolist"):
            result = result.tolist()
        if not isinstance(result, (list, tuple)) or len(result) != len(texts):
            raise TypeError("with micro-batching on, run() gets a list of %d request bodies and must return a list "
                            "of as many answers; it returned %s" % (len(texts), describe_len(result)))
        return result

    def each(bodies):
        """A micro-batch: run() gets the list of the request bodies (str)
        and returns one answer per body. When that call fails, each body
        is run alone (as a list of one), so that an error is its own
        request's."""
        texts = [b.decode("utf-8", "replace") for b in bodies]
        if len(texts) > 1:
            try:
                return Multi([(RESULT, encode(r)) for r in answers(texts)])
            except Exception:
                pass
        return Multi([outcome(lambda t=t: encode(answers([t])[0])) for t in texts])

    handle.each = each
    return handle


def describe_len(value):
    if isinstance(value, (list, tuple)):
        return "a list of %d" % len(value)
    return type(value).__name__


def cell(value):
    """One CSV field of a driver's output row: None and NaN are empty, as
    pandas writes them; numpy scalars are written as the Python value."""
    if value is None:
        return ""
    if type(value).__module__.startswith("numpy") and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def csv_line(values, delimiter=","):
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="").writerow([cell(v) for v in values])
    return buf.getvalue()


def batch_rows(result, delimiter=","):
    """Turns what a batch driver's run() returned into output rows, one
    string each (the Go side ends each with a newline):

    - a pandas DataFrame: each row as a line of its values separated by
      delimiter (quoted as CSV where they must be), without the header
      and the index;
    - a list, tuple, numpy array or pandas Series: one row per element,
      where a str is written as it is, a list, tuple, numpy array or
      Series (say, a row of df.values) as a line of its items, a dict
      as JSON, None as an empty line and anything else as str() of it.
    """
    module = type(result).__module__
    if module.startswith("pandas") and hasattr(result, "columns") and hasattr(result, "itertuples"):
        return [csv_line(row, delimiter) for row in result.itertuples(index=False, name=None)]
    if module.startswith("pandas") and hasattr(result, "tolist"):
        result = result.tolist()
    elif module.startswith("numpy") and hasattr(result, "ndim") and result.ndim >= 1:
        result = list(result)
    if not isinstance(result, (list, tuple)):
        raise TypeError("run() returned %s; a batch driver must return a list or a pandas DataFrame"
                        % type(result).__name__)
    rows = []
    for item in result:
        if isinstance(item, str):
            rows.append(item)
        elif isinstance(item, bytes):
            rows.append(item.decode("utf-8", "replace"))
        elif isinstance(item, dict):
            rows.append(json.dumps(finite(item), default=plain))
        elif isinstance(item, (list, tuple)) or (
                type(item).__module__.split(".")[0] in ("numpy", "pandas") and hasattr(item, "tolist")
                and getattr(item, "ndim", 0) >= 1):
            rows.append(csv_line(list(item), delimiter))
        else:
            rows.append(str(cell(item)))
    return rows


def read_table(path):
    """Reads a CSV or Parquet file of a tabular mini-batch with pandas."""
    import pandas as pd

    if path.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def load_batch(args):
    """Imports an Azure ML batch driver, which must define init() and
    run(mini_batch), and calls init() once; returns the handler that
    calls run() with each mini-batch: its list of file paths, or its rows
    as a DataFrame. The driver's shutdown(), if it has one, is the
    handler's shutdown attribute."""
    if args.program_args:
        sys.argv = [os.path.join(os.path.abspath(args.code_dir or "."), args.scoring_script)] + json.loads(args.program_args)
    if args.logging_level:
        logging.basicConfig(level=args.logging_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = import_script(args)
    init = getattr(module, "init", None)
    run = getattr(module, "run", None)
    missing = [f for f, fn in (("init()", init), ("run(mini_batch)", run)) if not callable(fn)]
    if missing:
        raise AttributeError("batch driver %s defines no %s function; a batch scoring script needs init() and run(mini_batch)"
                             % (args.scoring_script, " and no ".join(missing)))
    init()
    delimiter = " " if args.row_format == "space" else ","

    def handle(body):
        try:
            batch = json.loads(body)
        except ValueError as e:
            raise InputError("the mini-batch is not valid JSON: %s" % e)
        if isinstance(batch, dict) and isinstance(batch.get("table"), str):
            batch = read_table(batch["table"])
        elif not isinstance(batch, list) or not all(isinstance(p, str) for p in batch):
            raise InputError("the mini-batch must be a JSON list of file paths or {\"table\": PATH}")
        return json.dumps(batch_rows(run(batch), delimiter)).encode("utf-8")

    shutdown = getattr(module, "shutdown", None)
    handle.shutdown = shutdown if callable(shutdown) else None
    return handle


# Column indexes by column names: building a pandas Index costs more than
# the rest of a small table, and a deployment's requests name the same
# columns again and again. Indexes are immutable, so frames may share one.
column_indexes = {}


def column_index(pd, columns):
    if columns is None or len(columns) > 1000:
        return columns
    try:
        key = tuple(columns)
        index = column_indexes.get(key)
    except TypeError:  # a name that is a list or an object
        return columns
    if index is None:
        if len(column_indexes) >= 256:
            column_indexes.clear()
        index = column_indexes[key] = pd.Index(columns)
    return index


def float_frame(pd, data, columns):
    """The DataFrame of a table the server marked "dtype": "float64"
    (every value a JSON number with a decimal point or exponent), built
    from one float64 array: several times faster than row by row, and the
    same frame."""
    import numpy as np

    values = np.array(data, dtype=np.float64)
    if values.ndim != 2 or (columns is not None and values.shape[1] != len(columns)):
        return None
    return pd.DataFrame(values, columns=column_index(pd, columns), copy=False)


def frame_from(req):
    """Returns the DataFrame and params of a pyfunc request: {"columns",
    "data", "index"} at the top, or under "input_data" (Azure ML) or
    "dataframe_split" (MLflow); or a list of records under
    "dataframe_records" or "input_data"."""
    import pandas as pd

    if not isinstance(req, dict):
        raise InputError("the request body must be a JSON object with \"columns\" and \"data\"")
    params = req.get("params")
    if params is not None and not isinstance(params, dict):
        raise InputError("\"params\" must be a JSON object")
    if "data" in req or "columns" in req:
        split, records = req, None
    elif "input_data" in req:
        value = req["input_data"]
        split, records = (value, None) if isinstance(value, dict) else (None, value)
    elif "dataframe_split" in req:
        split, records = req["dataframe_split"], None
    elif "dataframe_records" in req:
        split, records = None, req["dataframe_records"]
    else:
        raise InputError("the request body must be a JSON object with \"columns\" and \"data\" (or \"input_data\", \"dataframe_split\", \"dataframe_records\")")
    try:
        if split is not None:
            if not isinstance(split, dict):
                raise InputError("the tabular input must be a JSON object with \"columns\" and \"data\"")
            data = split.get("data")
            columns = split.get("columns")
            if not isinstance(data, list):
                raise InputError("\"data\" must be a list of rows")
            if columns is not None and not isinstance(columns, list):
                raise InputError("\"columns\" must be a list of column names")
            index = split.get("index")
            if split.get("dtype") == "float64" and index is None and data:
                df = float_frame(pd, data, columns)
                if df is not None:
                    return df, params
            return pd.DataFrame(data=data, columns=column_index(pd, columns), index=index), params
        if not isinstance(records, list):
            raise InputError("the records must be a JSON list")
        return pd.DataFrame(data=records), params
    except InputError:
        raise
    except (ValueError, TypeError, AssertionError) as e:
        raise InputError("the input cannot be made into a table: %s" % e)


def required_columns(model):
    """Names of the columns the model's signature requires. MLflow itself
    reports a missing column as a server error; checking first lets the
    request be refused as bad input instead."""
    try:
        schema = model.metadata.get_input_schema()
        if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
            return []
        if hasattr(schema, "required_input_names"):
            return list(schema.required_input_names())
        return list(schema.input_names())
    except Exception:
        # A schema this MLflow describes differently: leave it to MLflow.
        return []


# The InputError message that tells the server to send mini-batches as
# JSON instead: the model's environment cannot read Parquet.
NO_PYARROW = "pyarrow is not installed in the model's environment"


def input_types(model):
    """The signature's column types by name ("double", "long", ...), or {}."""
    try:
        schema = model.metadata.get_input_schema()
        if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
            return {}
        return {c.name: getattr(c.type, "name", str(c.type)) for c in schema.inputs}
    except Exception:
        return {}


def frame_from_parquet(path, types):
    """Reads a mini-batch the server wrote as Parquet (numbers as doubles,
    text as strings) and gives each column the type the signature names,
    where that is exact: whole numbers to integers, numbers to booleans
    only when they are 0 and 1."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(NO_PYARROW)
    df = pq.read_table(path).to_pandas()
    for name, t in types.items():
        if name not in df.columns:
            continue
        col = df[name]
        kind = col.dtype.kind
        if t in ("long", "integer") and kind == "f" and col.notna().all() and (col % 1 == 0).all():
            df[name] = col.astype("int64" if t == "long" else "int32")
        elif t == "float" and kind == "f":
            df[name] = col.astype("float32")
        elif t == "boolean" and kind == "f" and col.isin([0.0, 1.0]).all():
            df[name] = col.astype(bool)
    return df


def mlflow_model_folder(model_dir):
    """The folder holding MLmodel: model_dir itself, or its one
    sub-folder, where Azure ML's layout puts a model registered from a
    folder (AZUREML_MODEL_DIR/<folder>/MLmodel). Otherwise model_dir, for
    MLflow to say what it lacks. scoring.FindMLmodel is the same rule."""
    if os.path.exists(os.path.join(model_dir, "MLmodel")):
        return model_dir
    try:
        entries = os.listdir(model_dir)
    except OSError:
        return model_dir
    if len(entries) == 1:
        sub = os.path.join(model_dir, entries[0])
        if os.path.exists(os.path.join(sub, "MLmodel")):
            return sub
    return model_dir


def load_pyfunc(args):
    # Set before the imports: a model's own code may read it, as it may
    # under Azure ML's server.
    os.environ["AZUREML_MODEL_DIR"] = args.model_dir
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(mlflow_model_folder(args.model_dir))
    # MLflow before 2.5 has no params argument.
    takes_params = "params" in inspect.signature(model.predict).parameters
    required = required_columns(model)
    types = input_types(model)

    def predict(df, params):
        if required:
            missing = [c for c in required if c not in df.columns]
            if missing:
                raise InputError("the model needs the input column(s) %s, which the request lacks" % ", ".join(map(str, missing)))
        try:
            if params:
                if not takes_params:
                    raise InputError("this model's MLflow version does not accept params")
                return model.predict(df, params=params)
            return model.predict(df)
        except MlflowException as e:
            # Schema and params validation; MLflow's own server answers
            # these with the status their error code names.
            if 400 <= e.get_http_status_code() < 500:
                raise InputError(e.message)
            raise

    # Whether a merged predict() gives one output row per input row; set
    # to False the first time it does not, after which every micro-batch
    # is scored a request at a time.
    merging = [True]

    def predict_merged(df, sizes):
        """Scores the requests merged into df in one predict() call and
        splits the output at the requests' row counts. When that call
        fails, or its output cannot be split so, each request's rows are
        scored alone, so that every request gets the answer (or the
        error) it would have got by itself."""
        if merging[0]:
            try:
                parts = split_rows(predict(df, None), sizes)
                if parts is not None:
                    return Multi([(RESULT, encode(p)) for p in parts])
                merging[0] = False
                print("wharf worker: the model's output does not have one row per input row; "
                      "scoring each request of a micro-batch alone from now on")
                sys.stdout.flush()
            except Exception:
                pass
        outcomes = []
        start = 0
        for n in sizes:
            part = df.iloc[start:start + n].reset_index(drop=True)
            start += n
            outcomes.append(outcome(lambda part=part: encode(predict(part, None))))
        return Multi(outcomes, 0 if merging[0] else MULTI_UNMERGED)

    def handle(body):
        try:
            req = json.loads(body)
        except ValueError as e:
            raise InputError("the request body is not valid JSON: %s" % e)
        if isinstance(req, dict) and "parquet_file" in req:
            # A batch mini-batch: the table is in the file, not the body.
            df, params = frame_from_parquet(req["parquet_file"], types), None
        else:
            df, params = frame_from(req)
        sizes = req.get("sizes")
        if sizes is not None:
            if (not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes)
                    or sum(sizes) != len(df)):
                raise InputError("\"sizes\" must be a list of row counts adding up to the table's %d rows" % len(df))
            return predict_merged(df, sizes)
        return encode(predict(df, params))

    return handle


def split_rows(predictions, sizes):
    """predictions cut into one part per request, at the requests' row
    counts; None when predictions does not have one row per input row."""
    total = sum(sizes)
    module = type(predictions).__module__
    if module.startswith("pandas") and hasattr(predictions, "iloc"):
        if len(predictions) != total:
            return None
        rows = predictions.iloc
    elif module.startswith("numpy") and getattr(predictions, "ndim", 0) >= 1:
        if predictions.shape[0] != total:
            return None
        rows = predictions
    elif isinstance(predictions, (list, tuple)):
        if len(predictions) != total:
            return None
        rows = predictions
    else:
        return None
    parts = []
    start = 0
    for n in sizes:
        parts.append(rows[start:start + n])
        start += n
    return parts


def read_exactly(rfile, n):
    data = rfile.read(n)
    if data is None or len(data) < n:
        return None
    return data


def serve(conn, rfile, handle):
    header_size = HEADER.size
    unpack = HEADER.unpack
    while True:
        header = read_exactly(rfile, header_size)
        if header is None:
            return 0  # the server closed the connection
        length, kind, rid = unpack(header)
        body = read_exactly(rfile, length) if length else b""
        if body is None:
            return 0
        if kind == EACH and getattr(handle, "each", None) is None:
            sys.stderr.write("wharf worker: this mode takes no micro-batches\n")
            return 2
        if kind != PREDICT and kind != EACH:
            sys.stderr.write("wharf worker: unexpected frame kind %d\n" % kind)
            return 2
        try:
            if kind == EACH:
                out = handle.each(unpack_each(body))
            else:
                out = handle(body)
        except InputError as e:
            send(conn, INPUT_ERROR, rid, error_payload(e))
            continue
        except Exception as e:
            traceback.print_exc()
            sys.stderr.flush()
            send(conn, MODEL_ERROR, rid, error_payload(e))
            continue
        if type(out) is Multi:
            send(conn, MULTI, rid, out.pack())
        else:
            send(conn, RESULT, rid, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Wharf model worker")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--mode", required=True, choices=["pyfunc", "score", "batch", "zygote"])
    parser.add_argument("--model-dir", default="")
    parser.add_argument("--code-dir", default="")
    parser.add_argument("--scoring-script", default="score.py")
    parser.add_argument("--warm-model", action="append", default=[])
    parser.add_argument("--program-args", default="")
    parser.add_argument("--row-format", default="csv", choices=["csv", "space"])
    parser.add_argument("--logging-level", default="")
    args = parser.parse_args(argv)
    if args.mode == "zygote":
        return zygote(args)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(args.socket)
    listener.listen(1)
    conn, _ = listener.accept()
    listener.close()
    try:
        os.unlink(args.socket)
    except OSError:
        pass
    rfile = conn.makefile("rb", buffering=65536)

    try:
        loaders = {"pyfunc": load_pyfunc, "score": load_score, "batch": load_batch}
        handle = loaders[args.mode](args)
    except BaseException as e:  # SystemExit from init() is a failure too
        traceback.print_exc()
        sys.stderr.flush()
        try:
            send(conn, FATAL, 0, error_payload(e, with_traceback=True))
        except OSError:
            pass
        return 1
    info = {"pid": os.getpid(), "python": sys.version.split()[0]}
    send(conn, READY, 0, json.dumps(info).encode("utf-8"))
    code = serve(conn, rfile, handle)
    shutdown = getattr(handle, "shutdown", None)
    if shutdown is not None:
        try:
            shutdown()
        except Exception:
            traceback.print_exc()
    return code


# Variables that take effect when an interpreter or a native library starts
# (module search, loader paths, thread pools): a forked worker keeps the
# zygote's, so a request whose values differ is refused. The Go side keys
# zygotes by the same prefixes (pyworker.startupVars).
STARTUP_PREFIXES = ("PYTHON", "LD_", "OMP_", "MKL_", "OPENBLAS_", "GOTO_", "BLIS_",
                    "VECLIB_", "NUMEXPR_", "KMP_", "CUDA_", "MALLOC_")

# The largest request: argv, working folder and environment as JSON.
MAX_REQUEST = 1 << 20


def startup_vars(env):
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES)}


# The outcome of warm() by model folder: asking again for a model answers
# what loading it gave, without loading it again.
warmed = {}


def warm(model_dir):
    """Loads a model once so that its libraries stay imported; the model
    itself is dropped, each worker loads its own copy. Returns the error
    text of a model that failed to load, or None."""
    if model_dir in warmed:
        return warmed[model_dir]
    err = None
    try:
        import mlflow.pyfunc

        mlflow.pyfunc.load_model(mlflow_model_folder(model_dir))
        print("wharf zygote: warmed with the model in %s" % model_dir)
    except Exception as e:
        err = "%s: %s" % (type_name(e), e)
        print("wharf zygote: loading %s failed; its workers import its libraries themselves" % model_dir)
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    warmed[model_dir] = err
    return err


def zygote(args):
    """Serves fork requests on a SOCK_SEQPACKET socket, one per connection.

    The request is one message: JSON {"args": [...], "dir": DIR, "env":
    ["K=V", ...]} with one file descriptor attached, where the worker's
    stdout and stderr go. The reply is {"pid": N} (or {"error": TEXT} for a
    refusal, after which the connection closes); when the worker exits a
    last message {"exit": CODE} or {"signal": N} follows. A client that
    closes its end kills its worker, so a worker never outlives the process
    that asked for it.

    A message {"warm": DIR} loads one more model and is answered {"ok":
    true} or {"error": TEXT}; for a model it has loaded before (one of
    its --warm-model too) it answers what loading it gave then.
    """
    # Taken before the imports, some of which set such variables for
    # themselves (scikit-learn sets KMP_DUPLICATE_LIB_OK).
    baseline = startup_vars(os.environ)
    for d in args.warm_model:
        warm(d)
    for name in ("pandas", "pyarrow.parquet"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass

    # The socket appears under its name only once warm, so a client that
    # finds it is never made to wait for the imports.
    tmp = args.socket + ".tmp"
    try:
        os.unlink(tmp)
    except OSError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(tmp)
    os.chmod(tmp, 0o600)
    listener.listen(64)
    os.rename(tmp, args.socket)
    try:
        # The server's marker that this zygote is still warming.
        os.unlink(args.socket + ".warming")
    except OSError:
        pass
    print("wharf zygote: ready on %s (pid %d)" % (args.socket, os.getpid()))
    sys.stdout.flush()

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listen")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    children = {}  # pid -> connection
    owners = {}  # connection -> pid
    # Objects alive now are never collected in a child, so the collector
    # does not touch (and copy) the pages shared with it.
    gc.freeze()

    def forget(conn):
        owners.pop(conn, None)
        try:
            sel.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                msg = {"signal": os.WTERMSIG(status)}
            else:
                msg = {"exit": os.WEXITSTATUS(status)}
            try:
                conn.send(json.dumps(msg).encode())
            except OSError:
                pass
            forget(conn)

    def handle(conn):
        pid = owners.get(conn)
        if pid:
            # The only thing a client sends after its request is its end.
            try:
                data = conn.recv(16)
            except OSError:
                data = b""
            if not data:
                # The group, and the worker itself in case it has not
                # made its group yet.
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                owners.pop(conn, None)
                sel.unregister(conn)
                # Reaping sends nothing to a closed connection and
                # closes it.
            return
        try:
            data, ancdata, _, _ = conn.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(4 * 4))
        except OSError:
            data, ancdata = b"", []
        fds = []
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) // 4 * 4]))
        try:
            if not data:
                forget(conn)
                return
            req = json.loads(data)
            if "warm" in req:
                err = warm(req["warm"])
                conn.send(json.dumps({"error": err} if err else {"ok": True}).encode())
                return
            env = dict(kv.split("=", 1) for kv in req["env"] if "=" in kv)
            refusal = None
            if len(fds) != 1:
                refusal = "a fork request carries exactly one file descriptor, for the output"
            elif startup_vars(env) != baseline:
                diff = sorted(set(startup_vars(env).items()) ^ set(baseline.items()))
                refusal = "the environment differs from the warm process's in %s" % ", ".join(sorted({k for k, _ in diff}))
            elif threading.active_count() > 1:
                refusal = "the warm process runs %d threads, which a fork would not copy safely" % threading.active_count()
            if refusal:
                conn.send(json.dumps({"error": refusal}).encode())
                forget(conn)
                return
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = child(req, env, fds[0], sel, wake_w)
                finally:
                    os._exit(code)
            children[pid] = conn
            owners[conn] = pid
            conn.send(json.dumps({"pid": pid}).encode())
        except Exception as e:
            try:
                conn.send(json.dumps({"error": "%s: %s" % (type_name(e), e)}).encode())
            except OSError:
                pass
            forget(conn)
        finally:
            for fd in fds:
                os.close(fd)

    while True:
        for key, _ in sel.select():
            if key.data == "listen":
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                sel.register(conn, selectors.EVENT_READ, "client")
            elif key.data == "wake":
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap()
            else:
                handle(key.fileobj)


def child(req, env, out_fd, sel, wake_w):
    """Turns a forked zygote into the worker req asks for and runs it."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    # The zygote's sockets and pipe: a copy left open here would keep
    # another client from seeing its connection end.
    for key in list(sel.get_map().values()):
        obj = key.fileobj
        if isinstance(obj, int):
            os.close(obj)
        else:
            obj.close()
    sel.close()
    os.close(wake_w)
    # Its own group, so that the server can kill whatever it starts.
    os.setsid()
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if req.get("dir"):
        os.chdir(req["dir"])
    os.environ.clear()
    os.environ.update(env)
    args = list(req["args"])
    sys.argv = args
    try:
        code = main(args[1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
