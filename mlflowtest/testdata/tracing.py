"""MLflow tracing through the unchanged `mlflow` 3.x client.

    MLFLOW_TRACKING_URI=... MLFLOW_TRACKING_TOKEN=... \
        python tracing.py --experiment NAME            # as a writer
    python tracing.py --reader --experiment-id ID --trace-id TR   # as a Reader

The writer produces traces with `@mlflow.trace` on nested functions and
`mlflow.start_span`, reads them back with `mlflow.search_traces`,
`MlflowClient().search_traces` and `get_trace`, and checks that every span
comes back with its inputs, outputs and attributes exactly as logged; then
filters, orders and pages searches, sets and deletes tags, logs, updates and
deletes assessments, and deletes traces by id and by timestamp. The reader
searches and reads, and is refused every write. Exits 1 with a message on
stderr on the first failed check; on success the last line on stdout is one
JSON summary.
"""

import argparse
import json
import os
import sys
import time

import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, Expectation, Feedback, SpanType
from mlflow.exceptions import MlflowException


def fail(msg):
    print(f"tracing.py: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def expect_error(what, code, fn):
    try:
        fn()
    except MlflowException as e:
        got = getattr(e, "error_code", None)
        check(got == code, f"{what}: error_code {got!r}, want {code} ({e})")
        return
    fail(f"{what} succeeded, want {code}")


NESTED = {"a": [1, 2.5, "x", None], "b": {"deep": True}}


@mlflow.trace(span_type=SpanType.CHAIN, attributes={"component": "pipeline", "version": 3})
def pipeline(question, k=2):
    docs = retrieve(question, k)
    return answer(question, docs)


@mlflow.trace(span_type=SpanType.RETRIEVER)
def retrieve(question, k):
    return [f"doc-{i}: {question}" for i in range(k)]


@mlflow.trace(name="llm-answer", span_type=SpanType.LLM)
def answer(question, docs):
    with mlflow.start_span(name="format", span_type=SpanType.PARSER) as span:
        span.set_inputs({"docs": docs})
        text = " | ".join(docs)
        span.set_outputs({"text": text})
        span.set_attribute("n_docs", len(docs))
        span.set_attributes({"nested": NESTED, "ratio": 0.125, "flag": False, "unicode": "naïve ✓"})
    return {"answer": text.upper(), "score": 0.75}


@mlflow.trace
def broken(x):
    raise ValueError(f"bad input {x}")


@mlflow.trace
def tick(i):
    return i * i


def spans_by_name(trace):
    out = {}
    for s in trace.data.spans:
        check(s.name not in out, f"trace {trace.info.trace_id} has two spans named {s.name}")
        out[s.name] = s
    return out


def check_pipeline_trace(trace, question):
    """The trace of pipeline(question) has four spans, linked and carrying
    exactly what was logged."""
    tid = trace.info.trace_id
    spans = spans_by_name(trace)
    check(set(spans) == {"pipeline", "retrieve", "llm-answer", "format"}, f"{tid}: spans {sorted(spans)}")
    root, ret, llm, fmt = spans["pipeline"], spans["retrieve"], spans["llm-answer"], spans["format"]
    check(root.parent_id is None, f"{tid}: root span has parent {root.parent_id}")
    check(ret.parent_id == root.span_id and llm.parent_id == root.span_id, f"{tid}: retrieve/llm-answer not children of pipeline")
    check(fmt.parent_id == llm.span_id, f"{tid}: format is not a child of llm-answer")
    check(len({s.trace_id for s in trace.data.spans}) == 1, f"{tid}: spans of several traces")
    docs = [f"doc-0: {question}", f"doc-1: {question}"]
    text = " | ".join(docs)
    check(root.inputs == {"question": question, "k": 2}, f"{tid}: pipeline inputs {root.inputs!r}")
    check(root.outputs == {"answer": text.upper(), "score": 0.75}, f"{tid}: pipeline outputs {root.outputs!r}")
    check(root.span_type == SpanType.CHAIN, f"{tid}: pipeline span type {root.span_type}")
    check(root.attributes.get("component") == "pipeline" and root.attributes.get("version") == 3,
          f"{tid}: pipeline attributes {root.attributes!r}")
    check(ret.inputs == {"question": question, "k": 2} and ret.outputs == docs, f"{tid}: retrieve {ret.inputs!r} -> {ret.outputs!r}")
    check(ret.span_type == SpanType.RETRIEVER, f"{tid}: retrieve span type {ret.span_type}")
    check(llm.inputs == {"question": question, "docs": docs}, f"{tid}: llm-answer inputs {llm.inputs!r}")
    check(fmt.inputs == {"docs": docs} and fmt.outputs == {"text": text}, f"{tid}: format {fmt.inputs!r} -> {fmt.outputs!r}")
    for key, want in {"n_docs": 2, "nested": NESTED, "ratio": 0.125, "flag": False, "unicode": "naïve ✓"}.items():
        check(fmt.attributes.get(key) == want, f"{tid}: format attribute {key} = {fmt.attributes.get(key)!r}, want {want!r}")
    for s in trace.data.spans:
        check(s.start_time_ns <= s.end_time_ns, f"{tid}: span {s.name} ends before it starts")
        check(s.status.status_code == "OK", f"{tid}: span {s.name} status {s.status}")
    check(trace.info.state.value == "OK", f"{tid}: state {trace.info.state}")
    check(trace.info.tags.get("mlflow.traceName") == "pipeline", f"{tid}: tags {trace.info.tags}")
    check(json.loads(trace.info.request_preview) == {"question": question, "k": 2}, f"{tid}: request preview {trace.info.request_preview!r}")


def send_otlp(exp_id):
    """Send a two-span trace as an OpenTelemetry exporter does, and return
    the id MLflow gives it."""
    import requests
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PBSpan, Status

    trace_id = os.urandom(16)
    now = time.time_ns()

    def kv(k, v):
        if isinstance(v, bool):
            return KeyValue(key=k, value=AnyValue(bool_value=v))
        if isinstance(v, int):
            return KeyValue(key=k, value=AnyValue(int_value=v))
        if isinstance(v, float):
            return KeyValue(key=k, value=AnyValue(double_value=v))
        if isinstance(v, list):
            return KeyValue(key=k, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=x) for x in v])))
        return KeyValue(key=k, value=AnyValue(string_value=v))

    root = PBSpan(trace_id=trace_id, span_id=b"\x00" * 7 + b"\x01", name="otel-root",
                  start_time_unix_nano=now, end_time_unix_nano=now + 250_000_000,
                  status=Status(code=Status.STATUS_CODE_OK))
    child = PBSpan(trace_id=trace_id, span_id=b"\x00" * 7 + b"\x02", parent_span_id=b"\x00" * 7 + b"\x01",
                   name="otel-child", start_time_unix_nano=now + 1000, end_time_unix_nano=now + 2000,
                   status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
                   attributes=[kv("llm.model", "small"), kv("tokens", 42), kv("ratio", 0.5), kv("ok", True), kv("docs", ["a", "b"])])
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.extend([child, root])
    r = requests.post(os.environ["MLFLOW_TRACKING_URI"] + "/v1/traces", data=req.SerializeToString(), timeout=60,
                      headers={"Content-Type": "application/x-protobuf", "X-MLflow-Experiment-Id": exp_id,
                               "Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]})
    check(r.status_code == 200, f"OTLP export: {r.status_code} {r.text}")
    return "tr-" + trace_id.hex()


def ids(traces):
    return [t.info.trace_id for t in traces]


def writer(args):
    client = MlflowClient()
    exp_id = mlflow.set_experiment(args.experiment).experiment_id
    checks = []

    # Traces: the nested pipeline twice (once inside a run), a failure, a
    # span tree built by hand, and five small ones.
    pipeline("what is wharf?")
    first = mlflow.get_last_active_trace_id()
    with mlflow.start_run() as run:
        pipeline("inside a run")
        in_run = mlflow.get_last_active_trace_id()
    try:
        broken(7)
    except ValueError:
        pass
    failed = mlflow.get_last_active_trace_id()
    with mlflow.start_span(name="manual", span_type=SpanType.AGENT) as root:
        root.set_inputs({"prompt": "hi"})
        with mlflow.start_span(name="tool") as child:
            child.set_inputs([1, 2, 3])
            child.set_outputs(6)
            child.set_attribute("tool.name", "sum")
        root.set_outputs("done")
    manual = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    time.sleep(0.01)
    mid_ms = int(time.time() * 1000)
    time.sleep(0.01)
    ticks = []
    for i in range(5):
        tick(i)
        ticks.append(mlflow.get_last_active_trace_id())
        time.sleep(0.002)
    mlflow.flush_trace_async_logging()
    all_ids = [first, in_run, failed, manual] + ticks
    check(len(set(all_ids)) == 9 and all(all_ids), f"trace ids {all_ids}")

    # Reading back: the fluent search, the client's search and get_trace
    # agree, span for span.
    found = mlflow.search_traces(locations=[exp_id], return_type="list")
    check(sorted(ids(found)) == sorted(all_ids), f"search_traces found {ids(found)}, want {all_ids}")
    check(ids(found) == list(reversed(all_ids)), f"default order {ids(found)} is not newest first")
    by_id = {t.info.trace_id: t for t in found}
    check_pipeline_trace(by_id[first], "what is wharf?")
    check_pipeline_trace(by_id[in_run], "inside a run")
    got = client.get_trace(first)
    check_pipeline_trace(got, "what is wharf?")
    check(json.loads(got.to_json())["data"] == json.loads(by_id[first].to_json())["data"],
          "get_trace and search_traces return different span data")
    df = mlflow.search_traces(locations=[exp_id])
    check(len(df) == 9 and "trace_id" in df.columns, f"search_traces as pandas: {len(df)} rows, columns {list(df.columns)}")
    checks.append("spans")

    fail_trace = client.get_trace(failed)
    check(fail_trace.info.state.value == "ERROR", f"broken() trace state {fail_trace.info.state}")
    span = fail_trace.data.spans[0]
    check(span.status.status_code == "ERROR" and any(e.name == "exception" for e in span.events),
          f"broken() span status {span.status} events {[e.name for e in span.events]}")
    check(span.inputs == {"x": 7}, f"broken() inputs {span.inputs!r}")
    man = spans_by_name(client.get_trace(manual))
    check(man["manual"].inputs == {"prompt": "hi"} and man["manual"].outputs == "done", f"manual root {man['manual'].inputs!r} -> {man['manual'].outputs!r}")
    check(man["tool"].inputs == [1, 2, 3] and man["tool"].outputs == 6 and man["tool"].attributes.get("tool.name") == "sum",
          f"manual child {man['tool'].inputs!r} -> {man['tool'].outputs!r} {man['tool'].attributes!r}")
    check(man["tool"].parent_id == man["manual"].span_id, "manual child is not linked to its parent")
    info = client.get_trace(first).info
    check(info.experiment_id == exp_id and info.execution_time_ms >= 0 and info.request_time > 0,
          f"trace info {info}")
    checks.append("get_trace")

    # Filters, order and paging.
    def search(flt=None, order=None):
        return ids(mlflow.search_traces(locations=[exp_id], filter_string=flt, order_by=order, return_type="list"))

    def expect(flt, want, order=None, exact_order=True):
        got = search(flt, order)
        ok = got == want if exact_order else sorted(got) == sorted(want)
        check(ok, f"search filter={flt!r} order_by={order!r}: got {got}, want {want}")

    expect("status = 'ERROR'", [failed])
    expect("trace.status = 'OK' AND name = 'pipeline'", [in_run, first])
    expect(f"timestamp_ms > {mid_ms}", ticks, exact_order=False)
    expect("execution_time_ms >= 0", all_ids, exact_order=False)
    expect(f"request_metadata.`mlflow.sourceRun` = '{run.info.run_id}'", [in_run])
    by_run = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    check(ids(by_run) == [in_run], f"search_traces(run_id=...) gave {ids(by_run)}")
    expect(None, all_ids, ["timestamp_ms ASC"])
    expect("name = 'tick'", list(reversed(ticks)), ["timestamp_ms DESC"])
    expect_error("filter on an unknown field", "INVALID_PARAMETER_VALUE",
                 lambda: mlflow.search_traces(locations=[exp_id], filter_string="nonsense.x = 1"))
    pages, token = [], None
    while True:
        page = client.search_traces(locations=[exp_id], max_results=4, page_token=token, filter_string="name = 'tick'",
                                    order_by=["timestamp_ms ASC"])
        pages.append(ids(page))
        token = page.token
        if not token:
            break
        check(len(pages) < 10, "paging does not end")
    check(pages[0] == ticks[:4] and sum(pages, []) == ticks, f"pages {pages}")
    paged = mlflow.search_traces(locations=[exp_id], max_results=3, return_type="list")
    check(len(paged) == 3, f"max_results=3 gave {len(paged)}")
    checks.append("search")

    # Tags.
    client.set_trace_tag(first, "team", "nlp")
    mlflow.set_trace_tag(in_run, "team", "vision")
    check(client.get_trace(first).info.tags.get("team") == "nlp", "tag team not set")
    expect("tags.team = 'nlp'", [first])
    expect("tags.team LIKE '%i%'", [in_run])
    client.delete_trace_tag(first, "team")
    check("team" not in client.get_trace(first).info.tags, "tag team not deleted")
    expect("tags.team = 'nlp'", [])
    expect_error("delete a missing tag", "RESOURCE_DOES_NOT_EXIST", lambda: client.delete_trace_tag(first, "team"))
    checks.append("tags")

    # Assessments.
    fb = mlflow.log_feedback(trace_id=first, name="relevance", value=0.5, rationale="partly",
                             source=AssessmentSource(source_type="HUMAN", source_id="ana"), metadata={"round": "1"})
    ex = mlflow.log_expectation(trace_id=first, name="expected", value={"answer": "WHARF", "facts": ["a", "b"]},
                                source=AssessmentSource(source_type="HUMAN", source_id="ana"))
    check(fb.assessment_id and ex.assessment_id and fb.assessment_id != ex.assessment_id, f"assessment ids {fb.assessment_id}, {ex.assessment_id}")
    got_fb = mlflow.get_assessment(first, fb.assessment_id)
    check(got_fb.value == 0.5 and got_fb.rationale == "partly" and got_fb.name == "relevance" and got_fb.source.source_id == "ana"
          and got_fb.metadata == {"round": "1"}, f"feedback read back {got_fb}")
    got_ex = mlflow.get_assessment(first, ex.assessment_id)
    check(got_ex.value == {"answer": "WHARF", "facts": ["a", "b"]}, f"expectation value {got_ex.value!r}")
    upd = mlflow.update_assessment(first, fb.assessment_id, Feedback(name="relevance", value=0.9, rationale="better"))
    check(upd.value == 0.9 and upd.rationale == "better", f"updated feedback {upd}")
    over = mlflow.override_feedback(trace_id=first, assessment_id=fb.assessment_id, value=1.0, rationale="fixed")
    check(mlflow.get_assessment(first, fb.assessment_id).valid is False, "overridden feedback is still valid")
    names = sorted((a.name, a.valid if isinstance(a, Feedback) else None) for a in client.get_trace(first).info.assessments)
    check(names == [("expected", None), ("relevance", False), ("relevance", True)], f"trace assessments {names}")
    mlflow.delete_assessment(first, over.assessment_id)
    check(mlflow.get_assessment(first, fb.assessment_id).valid is True, "deleting the override left the original invalid")
    mlflow.delete_assessment(first, ex.assessment_id)
    expect_error("get a deleted assessment", "RESOURCE_DOES_NOT_EXIST", lambda: mlflow.get_assessment(first, ex.assessment_id))
    check(len(client.get_trace(first).info.assessments) == 1, "assessments after delete")
    checks.append("assessments")

    # Deleting: by id, then the oldest by timestamp.
    n = client.delete_traces(exp_id, trace_ids=[failed, manual])
    check(n == 2, f"delete by ids deleted {n}")
    expect_error("get a deleted trace", "RESOURCE_DOES_NOT_EXIST", lambda: client.get_trace(failed))
    n = client.delete_traces(exp_id, max_timestamp_millis=mid_ms, max_traces=1)
    check(n == 1, f"delete the oldest deleted {n}")
    expect(None, [in_run] + ticks, exact_order=False)
    n = client.delete_traces(exp_id, max_timestamp_millis=int(time.time() * 1000) + 60000)
    check(n == 6, f"delete all deleted {n}")
    expect(None, [])
    checks.append("delete")

    # Spans from an OpenTelemetry exporter (OTLP/HTTP protobuf), read back
    # with the mlflow client.
    otlp_id = send_otlp(exp_id)
    got = client.get_trace(otlp_id)
    spans = spans_by_name(got)
    check(set(spans) == {"otel-root", "otel-child"}, f"OTLP trace spans {sorted(spans)}")
    check(spans["otel-child"].parent_id == spans["otel-root"].span_id, "OTLP child not linked to its root")
    want_attrs = {"llm.model": "small", "tokens": 42, "ratio": 0.5, "ok": True, "docs": ["a", "b"]}
    for k, v in want_attrs.items():
        check(spans["otel-child"].attributes.get(k) == v, f"OTLP attribute {k} = {spans['otel-child'].attributes.get(k)!r}, want {v!r}")
    check(spans["otel-child"].status.status_code == "ERROR" and spans["otel-child"].status.description == "boom",
          f"OTLP child status {spans['otel-child'].status}")
    check(got.info.state.value == "OK" and got.info.tags.get("mlflow.traceName") == "otel-root" and got.info.execution_time_ms == 250,
          f"OTLP trace info {got.info}")
    expect("name = 'otel-root'", [otlp_id])
    check(client.delete_traces(exp_id, trace_ids=[otlp_id]) == 1, "deleting the OTLP trace")
    checks.append("otlp")

    # Traces for the reader, and the spans' artifact for the caller to check.
    pipeline("for the reader")
    mlflow.flush_trace_async_logging()
    reader_trace = mlflow.get_last_active_trace_id()
    location = client.get_trace(reader_trace).info.tags.get("mlflow.artifactLocation", "")
    print(json.dumps({"client": mlflow.__version__, "experiment_id": exp_id, "checks": checks,
                      "trace_id": reader_trace, "artifact_location": location}))


def reader(args):
    client = MlflowClient()
    found = client.search_traces(locations=[args.experiment_id])
    check(ids(found) == [args.trace_id], f"reader found {ids(found)}")
    check_pipeline_trace(client.get_trace(args.trace_id), "for the reader")
    denied = []
    for what, fn in [
        ("set_trace_tag", lambda: client.set_trace_tag(args.trace_id, "k", "v")),
        ("delete_traces", lambda: client.delete_traces(args.experiment_id, trace_ids=[args.trace_id])),
        ("log_feedback", lambda: mlflow.log_feedback(trace_id=args.trace_id, name="n", value=1)),
    ]:
        expect_error(f"reader {what}", "PERMISSION_DENIED", fn)
        denied.append(what)
    check(ids(client.search_traces(locations=[args.experiment_id])) == [args.trace_id], "reader's refused delete deleted")
    check("k" not in client.get_trace(args.trace_id).info.tags, "reader's refused tag was set")
    print(json.dumps({"client": mlflow.__version__, "denied": denied}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment")
    ap.add_argument("--reader", action="store_true")
    ap.add_argument("--experiment-id")
    ap.add_argument("--trace-id")
    args = ap.parse_args()
    check(os.environ.get("MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI is not set")
    if args.reader:
        reader(args)
    else:
        writer(args)


if __name__ == "__main__":
    main()
