"""The two test harnesses that run inside sandboxes (stdlib only; `_codec.py` is prepended).

`record_main` runs in the solution's process: it loads the solution, binds each function the
tests use to a recorder, runs the tests with their expected values stripped (see `testplan.py`)
and writes, for every call, its arguments and what came back (plain data, or the exception's
kind) to the result channel. Nothing it writes is trusted: all a solution can put there is what
its functions return, which is exactly what it could do honestly.

`judge_main` runs the original tests in a fresh process in which no solution code ever runs:
each solution function is replaced by a replay of the recorded calls (or, in stub mode, by a
trivially wrong stub). Its per-test outcomes are the verdict.
"""

import builtins
import marshal
import os
import sys
import time

if globals().get("__package__"):  # imported as a module; in a sandbox `_codec.py` is prepended
    from dataflow_cli.sandbox._codec import (
        decode,
        dumps,
        encode,
        exception_info,
        key,
        quote,
        rebuild_exception,
        to_json,
    )

# Plans and records arrive as marshal data written by the parent (never by a solution); results
# leave as JSON lines written with `_codec.to_json` (the `json` module is slow to import).
Module = type(sys)
_write = os.write
_perf = time.perf_counter


class _Channel:
    def __init__(self, fd):
        self.fd = fd

    def emit(self, obj):
        self.raw(to_json(obj))

    def raw(self, line):
        data = (line + "\n").encode("utf-8", "surrogatepass")
        while data:
            written = _write(self.fd, data)
            data = data[written:]


class Unrecorded(BaseException):
    """A call the record run did not answer; a BaseException so no test's `except` hides it."""


class _Skipped(BaseException):
    pass


# --- a small `pytest` (raises, approx, fail, skip, mark) -------------------------------------
def _pytest_module(record):
    mod = Module("pytest")

    class RaisesContext:
        def __init__(self, expected, match=None):
            self.expected, self.match, self.value, self.type = expected, match, None, None

        def __enter__(self):
            return self

        def __exit__(self, kind, value, tb):
            if record:
                return kind is not None and issubclass(kind, Exception)
            if kind is None:
                raise AssertionError(f"DID NOT RAISE {self.expected!r}")
            if not issubclass(kind, self.expected):
                return False
            if self.match is not None:
                import re

                if not re.search(self.match, str(value)):
                    raise AssertionError(f"pattern {self.match!r} not found in {str(value)!r}")
            self.value, self.type = value, kind
            return True

    def raises(expected, *args, match=None, **kwargs):
        context = RaisesContext(expected, match)
        if not args:
            return context
        with context:
            args[0](*args[1:], **kwargs)
        return context

    class Approx:
        def __init__(self, expected, rel=None, abs=None):
            self.expected, self.rel, self.abs = (
                expected,
                1e-6 if rel is None else rel,
                1e-12 if abs is None else abs,
            )

        def _close(self, actual, expected):
            if isinstance(expected, (list, tuple)):
                return (
                    isinstance(actual, (list, tuple))
                    and len(actual) == len(expected)
                    and all(self._close(a, e) for a, e in zip(actual, expected, strict=True))
                )
            if isinstance(expected, dict):
                return (
                    isinstance(actual, dict)
                    and actual.keys() == expected.keys()
                    and all(self._close(actual[k], v) for k, v in expected.items())
                )
            if type(actual) not in (int, float, complex) or isinstance(actual, bool) != isinstance(
                expected, bool
            ):
                return actual == expected
            if actual == expected:
                return True
            return builtins.abs(actual - expected) <= max(self.rel * builtins.abs(expected), self.abs)

        def __eq__(self, actual):
            return self._close(actual, self.expected)

        __hash__ = None

        def __repr__(self):
            return f"approx({self.expected!r})"

    def fail(reason=""):
        raise AssertionError(reason or "failed")

    def skip(reason=""):
        raise _Skipped(reason)

    class Mark:
        def __getattr__(self, name):
            def mark(*args, **kwargs):
                if len(args) == 1 and callable(args[0]) and not kwargs:
                    return args[0]
                return lambda fn: fn

            return mark

    mod.raises, mod.approx, mod.fail, mod.skip, mod.mark = raises, Approx, fail, skip, Mark()
    return mod


def _install_modules(solution_module, record):
    sys.modules["pytest"] = _pytest_module(record)
    sys.modules["solution"] = solution_module


class _SeededRandom:
    """Makes tests draw the same random numbers in the record and the judge process: `random` is
    seeded with the step's number when a step starts and when it is first imported (by the tests
    or the solution, whichever comes first). Importing it up front would cost every run ~3 ms."""

    seed = 0

    def find_spec(self, name, path=None, target=None):
        if name != "random":
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        else:
            return None
        loader, seed = spec.loader, self

        class SeedingLoader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                module.seed(seed.seed)

        spec.loader = SeedingLoader()
        return spec


_SEEDER = _SeededRandom()
sys.meta_path.insert(0, _SEEDER)


def _reseed(index):
    _SEEDER.seed = index
    if "random" in sys.modules:
        sys.modules["random"].seed(index)


def _run_step(index, step, ns):
    _reseed(index)  # the same random inputs in both processes
    kind = step["kind"]
    if kind in ("setup", "assert"):
        exec(compile(step["code"], "tests.py", "exec"), ns)
    elif kind == "func":
        ns[step["name"]]()
    else:
        cls = ns[step["cls"]]
        try:
            instance = cls(step["name"])  # unittest.TestCase takes the method name
        except TypeError:
            instance = cls()
        for hook in ("setUp", "setup_method"):
            if callable(getattr(instance, hook, None)):
                getattr(instance, hook)() if hook == "setUp" else getattr(instance, hook)(None)
                break
        try:
            getattr(instance, step["name"])()
        finally:
            if callable(getattr(instance, "tearDown", None)):
                instance.tearDown()


def _test_namespace():
    return {"__name__": "tests", "__builtins__": builtins}


# --- record: in the solution's process -------------------------------------------------------
def record_main():
    channel = _Channel(int(sys.argv[1]))
    with open("plan.bin", "rb") as handle:
        plan = marshal.loads(handle.read())
    with open("solution.py", encoding="utf-8") as handle:
        source = handle.read()
    state = {"step": -1}

    def swallow():
        return sys.modules["pytest"].raises(Exception)

    def swallow_call(fn, *args, **kwargs):
        # A test's `assertRaises(E, f, ...)` reduced to its call: the recorder around `f` has
        # already logged the exception, which is all the judge run needs; the test's own check
        # happens there, not here.
        try:
            fn(*args, **kwargs)
        except Exception:
            pass

    solution = Module("solution")
    solution.__file__ = "solution.py"
    wrapped = Module("solution")
    _install_modules(wrapped, record=True)
    channel.emit({"ev": "load"})
    started = _perf()
    try:
        sys.modules["solution"] = solution  # the solution's own imports of itself see itself
        exec(compile(source, "solution.py", "exec"), solution.__dict__)
    except BaseException as exc:
        channel.emit({"ev": "load_error", "exc": exception_info(exc)})
        return
    finally:
        sys.modules["solution"] = wrapped

    def recorder(name, fn):
        def call(*args, **kwargs):
            k = key((args, kwargs))
            watched = [(i, a) for i, a in enumerate(args) if isinstance(a, (list, dict, set, bytearray))]
            watched += [(n, a) for n, a in kwargs.items() if isinstance(a, (list, dict, set, bytearray))]
            before = [key(a) for _, a in watched]
            head = f'{{"ev":"call","s":{state["step"]},"n":{quote(name)},"k":{quote(k)}'
            # The tests' random numbers must not depend on what the solution draws: the judge,
            # where it does not run, draws the same ones.
            rng = sys.modules.get("random")
            randomness = rng.getstate() if rng else None
            tee, stdout = _Tee(sys.stdout), sys.stdout
            sys.stdout = tee
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                info = exception_info(exc)
                tail = _mutations(watched, before) + tee.field() + ',"e":' + to_json(info) + "}"
                channel.raw(head + tail)
                raise rebuild_exception(info) from None
            finally:
                if sys.stdout is tee:
                    sys.stdout = stdout
                if rng is not None:
                    rng.setstate(randomness)
                elif "random" in sys.modules:  # imported by the solution: as the judge's import
                    sys.modules["random"].seed(state["step"])
            try:
                data = encode(result)
                text = to_json(data)
            except (ValueError, TypeError, RecursionError, OverflowError):
                data = {"o": "unencodable value"}
                text = to_json(data)
            channel.raw(head + _mutations(watched, before) + tee.field() + ',"r":' + text + "}")
            return decode(data)  # the tests see plain data, never the solution's objects

        return call

    callables, values = [], {}
    ns = _test_namespace()
    for name in plan["candidates"]:
        if name not in solution.__dict__:
            continue
        value = solution.__dict__[name]
        if callable(value):
            callables.append(name)
            setattr(wrapped, name, recorder(name, value))
        else:
            try:
                values[name] = encode(value)
            except (ValueError, TypeError, RecursionError, OverflowError):
                values[name] = {"o": "unencodable value"}
            setattr(wrapped, name, decode(values[name]))
        ns[name] = getattr(wrapped, name)
    channel.emit({"ev": "names", "callables": callables, "values": values, "load_s": _perf() - started})
    ns["__df_swallow__"], ns["__df_swallow_call__"] = swallow, swallow_call

    for index, step in enumerate(plan["steps"]):
        state["step"] = index
        channel.emit({"ev": "step", "s": index})
        started = _perf()
        try:
            _run_step(index, step, ns)
        except BaseException:  # the judge decides; recording goes on with the next test
            pass
        channel.emit({"ev": "end", "s": index, "t": _perf() - started})
    channel.emit({"ev": "done"})


class _Tee:
    """sys.stdout during a solution call: passes writes on and keeps them for the replay."""

    def __init__(self, target):
        self.target, self.parts = target, []

    def write(self, text):
        self.parts.append(str.__str__(text) if isinstance(text, str) else "")
        return self.target.write(text)

    def __getattr__(self, name):
        return getattr(self.target, name)

    def field(self):
        return ',"out":' + quote("".join(self.parts)) if self.parts else ""


def _mutations(watched, before):
    changed = []
    for (where, arg), old in zip(watched, before, strict=True):
        if key(arg) != old:  # changed in place: the judge's copy must change the same way
            changed.append(f"[{to_json(where)},{dumps(arg)}]")
    return ',"m":[' + ",".join(changed) + "]" if changed else ""


# --- judge: a process where no solution code runs ---------------------------------------------
def judge_main():
    channel = _Channel(int(sys.argv[1]))
    with open("plan.bin", "rb") as handle:
        plan = marshal.loads(handle.read())
    counter = {"checks": 0}

    def check():
        counter["checks"] += 1

    if plan["mode"] == "stubs":
        for stub_name, stub in _stubs():
            module = Module("solution")
            ns = _test_namespace()
            for name in plan["candidates"]:
                setattr(module, name, stub)
                ns[name] = stub
            results = _judge(plan, ns, module, check, counter)
            channel.emit({"ev": "stub", "stub": stub_name, "results": results})
        return

    calls, names = _read_records(plan["records"])
    module = Module("solution")
    ns = _test_namespace()
    cursor = {}
    state = {"step": -1}

    def replay(name):
        def call(*args, **kwargs):
            k = key((args, kwargs))
            pending = calls.get(state["step"], [])
            start = cursor.get(state["step"], 0)
            order = list(range(start, len(pending))) + list(range(0, start))
            for i in order:
                record = pending[i]
                if record is None or record["n"] != name or record["k"] != k:
                    continue
                pending[i] = None
                cursor[state["step"]] = i + 1
                return _answer(record, args, kwargs)
            raise Unrecorded(name)

        return call

    for name in names["callables"]:
        setattr(module, name, replay(name))
        ns[name] = getattr(module, name)
    for name, value in names["values"].items():
        setattr(module, name, decode(value))
        ns[name] = getattr(module, name)
    for index, result in enumerate(_judge(plan, ns, module, check, counter, state)):
        channel.emit({"ev": "result", "s": plan["tests"][index], **result})


def _answer(record, args, kwargs):
    if record.get("out"):
        sys.stdout.write(record["out"])
    for where, value in record.get("m", []):
        target = args[where] if isinstance(where, int) else kwargs[where]
        new = decode(value)
        if isinstance(target, (list, bytearray)):
            target[:] = new
        elif isinstance(target, (dict, set)):
            target.clear()
            target.update(new)
    if "e" in record:
        raise rebuild_exception(record["e"])
    return decode(record["r"])


def _read_records(events):
    """Calls by step and the names the solution bound, from the record run's events (parsed by
    the parent from JSON, so only plain data; still whatever the solution's process wrote)."""
    calls, names = {}, {"callables": [], "values": {}}
    for event in events:
        try:
            kind = event["ev"]
            if kind == "call":
                step, name, k = int(event["s"]), str(event["n"]), str(event["k"])
                if "e" in event:
                    record = {"n": name, "k": k, "e": dict(event["e"])}
                else:
                    record = {"n": name, "k": k, "r": event["r"]}
                if isinstance(event.get("out"), str):
                    record["out"] = event["out"]
                if isinstance(event.get("m"), list):
                    record["m"] = [(w, v) for w, v in event["m"] if isinstance(w, (int, str))]
                calls.setdefault(step, []).append(record)
            elif kind == "names":
                names = {
                    "callables": [str(n) for n in event["callables"]],
                    "values": {str(k): v for k, v in dict(event["values"]).items()},
                }
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # garbage from the solution's process is no answer
    return calls, names


def _judge(plan, ns, module, check, counter, state=None):
    """Run every step; one result per test step, in order."""
    _install_modules(module, record=False)
    ns["__df_check__"] = check
    results = []
    tests = set(plan["tests"])
    for index, step in enumerate(plan["steps"]):
        if state is not None:
            state["step"] = index
        counter["checks"] = 0
        started = _perf()
        try:
            _run_step(index, step, ns)
            outcome = None
        except BaseException as exc:
            outcome = exc
        if index not in tests:
            continue
        result = {"t": _perf() - started, "checks": counter["checks"]}
        if outcome is None:
            result["passed"] = counter["checks"] > 0
            if not result["passed"]:
                result["reason"] = "no check ran"
        else:
            result["passed"] = False
            result["reason"], result["detail"] = _why(outcome)
        results.append(result)
    return results


def _why(exc):
    name = type(exc).__name__
    message = ""
    try:
        message = str(exc)[:300]
    except Exception:  # a hostile exception's __str__ may raise: the verdict then has no message
        pass
    if isinstance(exc, Unrecorded):
        return "unrecorded", message
    if isinstance(exc, AssertionError):
        return "assertion failed", message
    if isinstance(exc, _Skipped):
        return "skipped", message
    if name == "SolutionAborted":
        return "solution exited", message
    if getattr(exc, "__df_from_solution__", False):
        return f"solution raised {name}", message
    if isinstance(exc, (TypeError, AttributeError)) and "cannot be checked" in message:
        return "result not plain data", message
    return f"test raised {name}", message


def _stubs():
    def returns(value):
        return lambda *args, **kwargs: value

    def raises(*args, **kwargs):
        raise NotImplementedError("stub")

    def identity(*args, **kwargs):
        return args[0] if args else next(iter(kwargs.values()), None)

    yield "returns None", returns(None)
    yield "raises", raises
    yield "returns its input", identity
    for label, value in (("0", 0), ("1", 1), ("-1", -1), ("True", True), ("False", False), ("''", "")):
        yield f"returns {label}", returns(value)
    yield "returns []", lambda *args, **kwargs: []
    yield "returns {}", lambda *args, **kwargs: {}
