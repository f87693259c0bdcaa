// minGRU / minLSTM over time with the gate math fused into the scan (CPU).
//
// The gates depend on x_t only, so PyTorch computes k = x W^T + b for all steps in one
// GEMM; this file does the rest, one pass over time per (row, block of hidden units):
//
//   minGRU  (k = [k_z, k_h]):      z = sigmoid(k_z), h~ = g(k_h), h = (1 - z) h + z h~
//   minLSTM (k = [k_f, k_i, k_h]): f = sigmoid(k_f), i = sigmoid(k_i), f' = f / (f + i),
//                                  i' = i / (f + i),  h = f' h + i' g(k_h)
//
// g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0) is Feng et al. (2024)'s positive activation.
// Rows stop at their length: later steps output 0 and leave the state alone, as the
// reference executor does. The backward pass recomputes the gates from k and reads
// h_{t-1} from the saved output, so nothing but the output is stored per step.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include "sigmoid.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

constexpr int64_t kBlock = 64;  // hidden units per task: the vectorised inner loop

using rnnkit::sigmoid;

// g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0); written without a branch so loops vectorise
template <typename T>
inline T g(T x, T sig) {
  return x >= T(0) ? x + T(0.5) : sig;
}

template <typename T>
inline T dg(T x, T sig) {  // g'(x)
  return x >= T(0) ? T(1) : sig * (T(1) - sig);
}

// One (row, block) task over all steps. KIND 0: minGRU, gates [z, h~]; 1: minLSTM, [f, i, h~].
template <int KIND, typename T>
void forward_task(const T* __restrict__ k, const T* __restrict__ h0, T* __restrict__ out,
                  T* __restrict__ final, int64_t T_, int64_t n, int64_t G, int64_t H, int64_t w) {
  T h[kBlock];
  for (int64_t j = 0; j < w; ++j) h[j] = h0[j];
  for (int64_t t = 0; t < n; ++t) {
    const T* __restrict__ k_t = k + t * G;
    T* __restrict__ o_t = out + t * H;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      if constexpr (KIND == 0) {
        const T z = sigmoid(k_t[j]), kh = k_t[H + j];
        h[j] = (T(1) - z) * h[j] + z * g(kh, sigmoid(kh));
      } else {
        const T f = sigmoid(k_t[j]), i = sigmoid(k_t[H + j]), kh = k_t[2 * H + j];
        const T s = f + i;
        h[j] = (f / s) * h[j] + (i / s) * g(kh, sigmoid(kh));
      }
      o_t[j] = h[j];
    }
  }
  for (int64_t t = n; t < T_; ++t) std::fill(out + t * H, out + t * H + w, T(0));
  for (int64_t j = 0; j < w; ++j) final[j] = h[j];
}

template <int KIND, typename T>
void backward_task(const T* __restrict__ grad_out, const T* __restrict__ grad_final, const T* __restrict__ k,
                   const T* __restrict__ h0, const T* __restrict__ out, T* __restrict__ grad_k,
                   T* __restrict__ grad_h0, int64_t T_, int64_t n, int64_t G, int64_t H, int64_t w) {
  T dh[kBlock];  // dL/dh_t, carried backwards
  for (int64_t j = 0; j < w; ++j) dh[j] = grad_final[j];
  for (int64_t t = T_ - 1; t >= n; --t)  // finished steps: no gradient to their k
    for (int64_t part = 0; part < KIND + 2; ++part) std::fill(grad_k + t * G + part * H, grad_k + t * G + part * H + w, T(0));
  for (int64_t t = n - 1; t >= 0; --t) {
    const T* __restrict__ k_t = k + t * G;
    const T* __restrict__ hp = t > 0 ? out + (t - 1) * H : h0;  // h_{t-1}
    const T* __restrict__ go_t = grad_out + t * H;
    T* __restrict__ gk_t = grad_k + t * G;
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) {
      const T d = dh[j] + go_t[j];
      if constexpr (KIND == 0) {
        const T z = sigmoid(k_t[j]), kh = k_t[H + j], sh = sigmoid(kh);
        gk_t[j] = d * (g(kh, sh) - hp[j]) * z * (T(1) - z);
        gk_t[H + j] = d * z * dg(kh, sh);
        dh[j] = d * (T(1) - z);
      } else {
        const T f = sigmoid(k_t[j]), i = sigmoid(k_t[H + j]), kh = k_t[2 * H + j], sh = sigmoid(kh);
        const T s = f + i, fn = f / s, in = i / s;
        // h = h~ + f' (h_{t-1} - h~), f' = f / (f + i): df'/df = i / s² = f' i' / f and
        // df'/di = -f' i' / i, written without s², which underflows when f and i are tiny
        const T d_fn = d * (hp[j] - g(kh, sh));
        gk_t[j] = d_fn * fn * in * (T(1) - f);
        gk_t[H + j] = -d_fn * fn * in * (T(1) - i);
        gk_t[2 * H + j] = d * in * dg(kh, sh);
        dh[j] = d * fn;
      }
    }
  }
  for (int64_t j = 0; j < w; ++j) grad_h0[j] = dh[j];
}

void check(const at::Tensor& k, const at::Tensor& h0, const at::Tensor& lengths, int64_t kind) {
  TORCH_CHECK(kind == 0 || kind == 1, "kind must be 0 (minGRU) or 1 (minLSTM), got ", kind);
  TORCH_CHECK(k.dim() == 3 && k.is_contiguous(), "k must be a contiguous (B, T, G) tensor");
  TORCH_CHECK(h0.dim() == 2 && h0.is_contiguous() && h0.scalar_type() == k.scalar_type(),
              "h0 must be a contiguous (B, H) tensor of k's dtype");
  TORCH_CHECK(k.size(0) == h0.size(0) && k.size(2) == (kind + 2) * h0.size(1),
              "k must be (B, T, ", kind + 2, " * H) for h0 of shape (B, H)");
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == k.size(0) && lengths.scalar_type() == at::kLong &&
                  lengths.is_contiguous(),
              "lengths must be a contiguous (B,) int64 tensor");
  TORCH_CHECK(k.device().is_cpu() && h0.device().is_cpu() && lengths.device().is_cpu(), "CPU tensors only");
  const int64_t* len = lengths.data_ptr<int64_t>();
  for (int64_t b = 0; b < lengths.size(0); ++b)  // the loops index by them: out of range is memory
    TORCH_CHECK(len[b] >= 1 && len[b] <= k.size(1), "lengths must be in [1, ", k.size(1), "], got ", len[b]);
}

}  // namespace

// -> (out (B, T, H), final (B, H))
std::vector<at::Tensor> min_scan_forward(const at::Tensor& k, const at::Tensor& h0, const at::Tensor& lengths,
                                         int64_t kind) {
  check(k, h0, lengths, kind);
  const int64_t B = k.size(0), T = k.size(1), G = k.size(2), H = h0.size(1);
  auto out = at::empty({B, T, H}, k.options());
  auto final = at::empty({B, H}, k.options());
  const int64_t blocks = (H + kBlock - 1) / kBlock;
  const int64_t* len = lengths.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "min_scan_forward", [&] {
    const scalar_t* kp = k.data_ptr<scalar_t>();
    const scalar_t* h0p = h0.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    scalar_t* fp = final.data_ptr<scalar_t>();
    at::parallel_for(0, B * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / blocks, lo = (task % blocks) * kBlock, w = std::min(H - lo, kBlock);
        const int64_t n = std::min<int64_t>(len[b], T);
        auto run = kind == 0 ? forward_task<0, scalar_t> : forward_task<1, scalar_t>;
        run(kp + b * T * G + lo, h0p + b * H + lo, op + b * T * H + lo, fp + b * H + lo, T, n, G, H, w);
      }
    });
  });
  return {out, final};
}

// -> (grad_k (B, T, G), grad_h0 (B, H)); grad_out (B, T, H) and grad_final (B, H)
std::vector<at::Tensor> min_scan_backward(const at::Tensor& grad_out, const at::Tensor& grad_final,
                                          const at::Tensor& k, const at::Tensor& h0, const at::Tensor& out,
                                          const at::Tensor& lengths, int64_t kind) {
  check(k, h0, lengths, kind);
  TORCH_CHECK(out.dim() == 3 && out.size(0) == k.size(0) && out.size(1) == k.size(1) && out.size(2) == h0.size(1),
              "out must be (B, T, H)");
  TORCH_CHECK(grad_out.sizes() == out.sizes() && grad_out.is_contiguous() && out.is_contiguous() &&
                  grad_out.device().is_cpu() && out.device().is_cpu() && grad_final.device().is_cpu(),
              "grad_out and out must be contiguous (B, T, H) CPU tensors");
  TORCH_CHECK(grad_out.scalar_type() == k.scalar_type() && out.scalar_type() == k.scalar_type() &&
                  grad_final.scalar_type() == k.scalar_type(), "gradients and out must have k's dtype");
  TORCH_CHECK(grad_final.sizes() == h0.sizes() && grad_final.is_contiguous(),
              "grad_final must be a contiguous (B, H)");
  const int64_t B = k.size(0), T = k.size(1), G = k.size(2), H = h0.size(1);
  auto grad_k = at::empty_like(k);
  auto grad_h0 = at::empty_like(h0);
  const int64_t blocks = (H + kBlock - 1) / kBlock;
  const int64_t* len = lengths.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "min_scan_backward", [&] {
    const scalar_t* kp = k.data_ptr<scalar_t>();
    const scalar_t* h0p = h0.data_ptr<scalar_t>();
    const scalar_t* op = out.data_ptr<scalar_t>();
    const scalar_t* gop = grad_out.data_ptr<scalar_t>();
    const scalar_t* gfp = grad_final.data_ptr<scalar_t>();
    scalar_t* gkp = grad_k.data_ptr<scalar_t>();
    scalar_t* gh0p = grad_h0.data_ptr<scalar_t>();
    at::parallel_for(0, B * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t b = task / blocks, lo = (task % blocks) * kBlock, w = std::min(H - lo, kBlock);
        const int64_t n = std::min<int64_t>(len[b], T);
        auto run = kind == 0 ? backward_task<0, scalar_t> : backward_task<1, scalar_t>;
        run(gop + b * T * H + lo, gfp + b * H + lo, kp + b * T * G + lo, h0p + b * H + lo, op + b * T * H + lo,
            gkp + b * T * G + lo, gh0p + b * H + lo, T, n, G, H, w);
      }
    });
  });
  return {grad_k, grad_h0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("min_scan_forward", &min_scan_forward, "minGRU/minLSTM scan, forward");
  m.def("min_scan_backward", &min_scan_backward, "minGRU/minLSTM scan, backward");
}
