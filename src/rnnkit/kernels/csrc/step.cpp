// One time step of a stacked LSTM / GRU / Elman RNN in one call (CPU, inference).
//
// Streaming inference at batch 1 is bound by reading the weights once: two
// matrix-vector products per layer (W_ih x, W_hh h). Everything else a step does (gate
// nonlinearities, the state update, Python's per-op dispatch) is overhead on top of that
// floor, so this file does the whole stack in one call: per layer, the two products through
// ATen (BLAS), then one fused pass over the gates. Gate layouts and equations are
// torch.nn's: LSTM (i, f, g, o), GRU (r, z, n) with the reset gate after the product.
//
// weights: per layer w_ih (G*H, I), w_hh (G*H, H), and with has_bias b_ih, b_hh (G*H); or,
// concatenated (LSTM, RNN), [w_ih | w_hh] (G*H, I+H) and b_ih + b_hh (G*H); or, quantized
// (LSTM, RNN, float32), that matrix in int8 (G*H, I+H), its per-row scales and the bias.
// h, c: (L, B, H). Returns the new (h, c) (c empty for GRU/RNN).
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace {

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(std::min(-x, T(80))));
}

// gates_BG = x W_ih^T (+ b_ih); the batch-1 case as a matrix-vector product
at::Tensor project(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (x.size(0) == 1) {
    auto v = x.squeeze(0);
    return (b.defined() ? at::addmv(b, w, v) : at::mv(w, v)).unsqueeze(0);
  }
  return b.defined() ? at::addmm(b, x, w.t()) : at::mm(x, w.t());
}

// gates_BG = dequantized (int8 W) (int8 a) + b. Dynamic quantization: each row of a is
// scaled to [-127, 127] here (symmetric, per row), W was quantized per output row when the
// weights were prepared (quantize_rows), and the products accumulate in int32.
at::Tensor project_int8(const at::Tensor& a_in, const at::Tensor& w_q, const at::Tensor& w_scale,
                        const at::Tensor& bias) {
  TORCH_CHECK(w_q.scalar_type() == at::kChar && a_in.scalar_type() == at::kFloat, "int8 weights, float32 input");
  auto a = a_in.contiguous();
  const int64_t B = a.size(0), K = a.size(1), G = w_q.size(0);
  auto out = at::empty({B, G}, a.options());
  std::vector<int8_t> qa(K);
  const int8_t* __restrict__ wq = w_q.data_ptr<int8_t>();
  const float* __restrict__ ws = w_scale.data_ptr<float>();
  const float* __restrict__ bp = bias.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const float* __restrict__ ab = a.data_ptr<float>() + b * K;
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::fabs(ab[k]));
    const float sa = amax > 0.f ? amax / 127.f : 1.f;
    const float inv = 1.f / sa;
    for (int64_t k = 0; k < K; ++k) qa[k] = static_cast<int8_t>(std::nearbyint(ab[k] * inv));
    const int8_t* __restrict__ q = qa.data();
    float* __restrict__ ob = out.data_ptr<float>() + b * G;
    for (int64_t g = 0; g < G; ++g) {
      const int8_t* __restrict__ row = wq + g * K;
      int32_t acc = 0;
      _Pragma("omp simd reduction(+ : acc)")
      for (int64_t k = 0; k < K; ++k) acc += int32_t(row[k]) * int32_t(q[k]);
      ob[g] = float(acc) * (ws[g] * sa) + bp[g];
    }
  }
  return out;
}

enum Kind { kLSTM = 0, kGRU = 1, kTanh = 2, kRelu = 3 };

}  // namespace

std::vector<at::Tensor> rnn_step(int64_t kind, const at::Tensor& x_in, const at::Tensor& h,
                                 const std::optional<at::Tensor>& c_opt, const std::vector<at::Tensor>& weights,
                                 bool has_bias, bool concatenated, bool quantized) {
  const at::Tensor c = c_opt.has_value() ? *c_opt : at::Tensor();
  concatenated = concatenated || quantized;
  TORCH_CHECK(!concatenated || kind != kGRU, "the GRU's n gate needs W_hh h apart: no concatenated weights");
  const int64_t per_layer = quantized ? 3 : concatenated ? 2 : has_bias ? 4 : 2;
  TORCH_CHECK(kind >= 0 && kind <= 3, "kind must be 0 (lstm), 1 (gru), 2 (rnn_tanh) or 3 (rnn_relu)");
  TORCH_CHECK(h.dim() == 3 && (int64_t)weights.size() == h.size(0) * per_layer,
              "h must be (L, B, H) with ", per_layer, " weights per layer");
  TORCH_CHECK(x_in.dim() == 2 && x_in.size(0) == h.size(1), "x must be (B, I) for h of shape (L, B, H)");
  TORCH_CHECK(kind != kLSTM || (c.defined() && c.sizes() == h.sizes()), "c must have h's shape");
  const int64_t L = h.size(0), B = h.size(1), H = h.size(2);
  auto h_out = at::empty_like(h);
  auto c_out = kind == kLSTM ? at::empty_like(c) : at::Tensor();
  at::Tensor x = x_in;
  for (int64_t l = 0; l < L; ++l) {
    auto h_l = h[l], h_new = h_out[l];
    at::Tensor gi, gh;
    if (quantized) {
      gi = project_int8(at::cat({x, h_l}, 1), weights[l * 3], weights[l * 3 + 1], weights[l * 3 + 2]);
      gh = gi;
    } else if (concatenated) {
      // LSTM / RNN: the gates only need W_ih x + W_hh h, so one product of [W_ih | W_hh]
      // with [x; h] reads the weights in a single pass (the matrix-vector floor itself)
      gi = project(at::cat({x, h_l}, 1), weights[l * 2], weights[l * 2 + 1]).contiguous();
      gh = gi;
    } else {
      const at::Tensor& w_ih = weights[l * per_layer];
      const at::Tensor& w_hh = weights[l * per_layer + 1];
      at::Tensor b_ih = has_bias ? weights[l * per_layer + 2] : at::Tensor();
      at::Tensor b_hh = has_bias ? weights[l * per_layer + 3] : at::Tensor();
      gi = project(x, w_ih, b_ih).contiguous();
      gh = project(h_l, w_hh, b_hh).contiguous();
    }
    auto h_prev = h_l.contiguous();
    auto c_prev = kind == kLSTM ? c[l].contiguous() : at::Tensor();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rnn_step", [&] {
      const scalar_t* __restrict__ pi = gi.data_ptr<scalar_t>();
      const scalar_t* __restrict__ ph = gh.data_ptr<scalar_t>();
      const scalar_t* __restrict__ hp = h_prev.data_ptr<scalar_t>();
      scalar_t* __restrict__ ho = h_new.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t G = gi.size(1);
        const scalar_t* a = pi + b * G;
        // concatenated: a already holds both products, and R(k) is 0 (a loop-invariant
        // test that -O3 hoists out of the loops)
        const scalar_t* r = concatenated ? nullptr : ph + b * G;
        auto R = [r](int64_t k) { return r ? r[k] : scalar_t(0); };
        scalar_t* hb = ho + b * H;
        if (kind == kLSTM) {
          const scalar_t* cp = c_prev.data_ptr<scalar_t>() + b * H;
          scalar_t* cb = c_out[l].data_ptr<scalar_t>() + b * H;
          _Pragma("omp simd")
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t i = sigmoid(a[j] + R(j)), f = sigmoid(a[H + j] + R(H + j));
            const scalar_t g = std::tanh(a[2 * H + j] + R(2 * H + j)), o = sigmoid(a[3 * H + j] + R(3 * H + j));
            const scalar_t cn = f * cp[j] + i * g;
            cb[j] = cn;
            hb[j] = o * std::tanh(cn);
          }
        } else if (kind == kGRU) {
          const scalar_t* hpb = hp + b * H;
          _Pragma("omp simd")
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t rr = sigmoid(a[j] + R(j)), z = sigmoid(a[H + j] + R(H + j));
            const scalar_t n = std::tanh(a[2 * H + j] + rr * R(2 * H + j));
            hb[j] = (scalar_t(1) - z) * n + z * hpb[j];
          }
        } else {
          _Pragma("omp simd")
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t v = a[j] + R(j);
            hb[j] = kind == kTanh ? std::tanh(v) : (v > scalar_t(0) ? v : scalar_t(0));
          }
        }
      }
    });
    x = h_new;
  }
  return {h_out, c_out};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_step", &rnn_step, "one step of a stacked LSTM/GRU/RNN, inference");
}
