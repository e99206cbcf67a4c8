"""What a native kernel would gain on the U-Net's 1-4-row matrix multiplies (issue 25).

The innermost layers of unet_256 at batch 1 run as matrix multiplies of 1-4 rows against an
8.4 M-value bf16 weight (``ganzoo/nn/matmul_conv.py``); oneDNN takes 2-3x the time reading the
weight takes. This compiles a plain AVX-512 C kernel (fp32 accumulation, bf16 rounded to
nearest even, both cores through OpenMP) with the system's C compiler and times it against
``torch.mm`` shape by shape, interleaved: the forward product and the weight gradient (an
outer-product sum). Exploratory: ganzoo ships no native code; this measures what shipping some
would buy (docs/performance.md, "Where issue 25 stands").

    python benchmarks/small_gemm_kernel.py
"""

from __future__ import annotations

import ctypes
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from ganzoo.training.allocator import keep_freed_memory

KERNEL = r"""
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
static inline __m512 ld16(const uint16_t* p) {
  __m256i h = _mm256_loadu_si256((const __m256i*)p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
static inline void st16(uint16_t* p, __m512 v) {
  __m512i i = _mm512_castps_si512(v);
  __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(i, 16), _mm512_set1_epi32(1));
  i = _mm512_add_epi32(i, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
  _mm256_storeu_si256((__m256i*)p, _mm512_cvtepi32_epi16(_mm512_srli_epi32(i, 16)));
}
/* out(M,N) = x(M,K) @ w(K,N), bf16 row-major, M <= 4, N a multiple of 64, K <= 16384 */
void small_mm(const uint16_t* x, const uint16_t* w, uint16_t* out, int M, int K, int N) {
  static float xf[4 * 16384];
  for (int i = 0; i < M * K; i++) { uint32_t b = ((uint32_t)x[i]) << 16; memcpy(&xf[i], &b, 4); }
  #pragma omp parallel for schedule(static)
  for (int n0 = 0; n0 < N; n0 += 64) {
    __m512 acc[4][4];
    for (int m = 0; m < 4; m++) for (int j = 0; j < 4; j++) acc[m][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
      const uint16_t* row = w + (size_t)k * N + n0;
      __m512 w0 = ld16(row), w1 = ld16(row + 16), w2 = ld16(row + 32), w3 = ld16(row + 48);
      for (int m = 0; m < M; m++) {
        __m512 xv = _mm512_set1_ps(xf[m * K + k]);
        acc[m][0] = _mm512_fmadd_ps(xv, w0, acc[m][0]);
        acc[m][1] = _mm512_fmadd_ps(xv, w1, acc[m][1]);
        acc[m][2] = _mm512_fmadd_ps(xv, w2, acc[m][2]);
        acc[m][3] = _mm512_fmadd_ps(xv, w3, acc[m][3]);
      }
    }
    for (int m = 0; m < M; m++)
      for (int j = 0; j < 4; j++) st16(out + (size_t)m * N + n0 + 16 * j, acc[m][j]);
  }
}
/* out(K,N) = x(M,K)^T @ g(M,N): a weight gradient, M <= 64, N a multiple of 16 */
void small_wgrad(const uint16_t* x, const uint16_t* g, uint16_t* out, int M, int K, int N) {
  #pragma omp parallel for schedule(static)
  for (int k = 0; k < K; k++) {
    float xs[64];
    for (int m = 0; m < M; m++) {
      uint32_t b = ((uint32_t)x[m * K + k]) << 16;
      memcpy(&xs[m], &b, 4);
    }
    for (int n0 = 0; n0 < N; n0 += 16) {
      __m512 acc = _mm512_setzero_ps();
      for (int m = 0; m < M; m++)
        acc = _mm512_fmadd_ps(_mm512_set1_ps(xs[m]), ld16(g + (size_t)m * N + n0), acc);
      st16(out + (size_t)k * N + n0, acc);
    }
  }
}
"""

# (rows, inner, columns) of unet_256's 1-4-row products at batch 1 (forward: x @ W)
FORWARD = [(1, 512, 8192), (4, 512, 8192), (4, 1024, 8192)]
# (rows, K, N) of their weight gradients: x(rows, K)^T @ g(rows, N)
WGRAD = [(1, 512, 8192), (4, 512, 8192), (4, 1024, 8192)]


def compile_kernel(folder: Path) -> ctypes.CDLL:
    """The kernel built with the system's C compiler (AVX-512, OpenMP)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        sys.exit("no C compiler (gcc) on PATH: install one to run this benchmark")
    source, library = folder / "small_gemm.c", folder / "libsmall_gemm.so"
    source.write_text(KERNEL)
    flags = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-fopenmp", "-shared", "-fPIC"]
    subprocess.run([compiler, *flags, str(source), "-o", str(library)], check=True)
    return ctypes.CDLL(str(library))


def interleaved_ms(
    first: Callable[[], object], second: Callable[[], object], repeats: int, flush: torch.Tensor
) -> tuple[float, float]:
    """Median ms of ``first()`` and ``second()``, called in alternating order after 3 warm-up
    rounds, the last-level cache flushed before each call."""
    times: dict[int, list[float]] = {0: [], 1: []}
    fns = (first, second)
    for i in range(repeats + 3):
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            flush.add_(1.0)
            start = time.perf_counter()
            fns[which]()
            if i >= 3:
                times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def row(label: str, onednn_ms: float, kernel_ms: float, error: float) -> None:
    ratio = onednn_ms / kernel_ms
    print(f"| {label} | {onednn_ms:.2f} | {kernel_ms:.2f} | {ratio:.2f}x | {error:.1e} |")


def main() -> None:
    keep_freed_memory()  # as the trainer does: freed buffers reused, not unmapped
    torch.manual_seed(0)
    bf16, ptr = torch.bfloat16, ctypes.c_void_p
    flush = torch.empty(64 * 2**20 // 4)
    with tempfile.TemporaryDirectory() as folder:
        lib = compile_kernel(Path(folder))

        def kernel_mm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            out = torch.empty(x.shape[0], w.shape[1], dtype=bf16)
            ptrs = (ptr(t.data_ptr()) for t in (x, w, out))
            lib.small_mm(*ptrs, x.shape[0], x.shape[1], w.shape[1])
            return out

        def kernel_wgrad(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            out = torch.empty(x.shape[1], g.shape[1], dtype=bf16)
            ptrs = (ptr(t.data_ptr()) for t in (x, g, out))
            lib.small_wgrad(*ptrs, x.shape[0], x.shape[1], g.shape[1])
            return out

        threads = torch.get_num_threads()
        print(f"torch {torch.__version__}, {threads} threads; median ms of 30, interleaved")
        print("| product | oneDNN (torch.mm) | C kernel | oneDNN / kernel | max error / max |")
        print("|---|---:|---:|---:|---:|")
        for m, k, n in FORWARD:
            x, w = torch.randn(m, k).to(bf16), torch.randn(k, n).to(bf16)
            ref = x.float() @ w.float()
            err = ((kernel_mm(x, w).float() - ref).abs().max() / ref.abs().max()).item()
            a, b = interleaved_ms(partial(torch.mm, x, w), partial(kernel_mm, x, w), 30, flush)
            row(f"forward ({m}, {k}) x ({k}, {n})", a, b, err)
        for m, k, n in WGRAD:
            x, g = torch.randn(m, k).to(bf16), torch.randn(m, n).to(bf16)
            ref = x.float().t() @ g.float()
            err = ((kernel_wgrad(x, g).float() - ref).abs().max() / ref.abs().max()).item()
            xt = x.t()  # as autograd hands it
            a, b = interleaved_ms(partial(torch.mm, xt, g), partial(kernel_wgrad, x, g), 30, flush)
            row(f"weight grad ({k}, {m}) x ({m}, {n})", a, b, err)


if __name__ == "__main__":
    main()
