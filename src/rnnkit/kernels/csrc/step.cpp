// One time step of a stacked LSTM / GRU / Elman RNN in one call (CPU, float32, inference).
//
// Streaming inference at batch 1 is bound by reading the weights once: a matrix-vector
// product per layer. Everything else a step does (gate nonlinearities, the state update,
// Python's per-op dispatch) is overhead on top of that floor, so this file does the whole
// stack in one call: per layer the product through ATen (BLAS, or fbgemm's int8 GEMV),
// then one fused pass over the gates. LSTM and RNN multiply [W_ih | W_hh] by [x; h] in one
// product; the GRU needs W_hh h apart (its n gate scales it by r), so it makes two, and so
// does int8 (x and h get a quantization scale each).
// Gate layouts and equations are torch.nn's: LSTM (i, f, g, o), GRU (r, z, n) with the
// reset gate after the product, RNN tanh/relu.
//
// A projection is [w, b] (float32) or [w_int8, packed, col_offsets, scale, zero_point, b]
// (fbgemm's dynamic int8 linear: weights quantized once, the input per call). Per layer:
// one projection of [x; h] (LSTM, RNN in float32) or two, of x and of h (GRU, int8).
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace {

enum Kind { kLSTM = 0, kGRU = 1, kTanh = 2, kRelu = 3 };

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(std::min(-x, 80.f))); }

// (B, K) -> (B, G): v W^T + b
at::Tensor project(const at::Tensor& v, const at::Tensor* w, bool int8) {
  if (int8)
    return at::fbgemm_linear_int8_weight_fp32_activation(v, w[0], w[1], w[2], w[3].item<double>(),
                                                         w[4].item<int64_t>(), w[5]);
  if (v.size(0) == 1) return at::addmv(w[1], w[0], v[0]).unsqueeze(0);
  return at::addmm(w[1], v, w[0].t());
}

}  // namespace

// x (B, I); h, c (L, B, H) (c only for LSTM). Returns the new (h, c, output): c is empty but
// for LSTM, and output (B, H) is the last layer's h (a view), which Python would index apart.
std::vector<at::Tensor> rnn_step(int64_t kind, const at::Tensor& x_in, const at::Tensor& h,
                                 const std::optional<at::Tensor>& c_opt, const std::vector<at::Tensor>& weights,
                                 bool int8) {
  TORCH_CHECK(kind >= 0 && kind <= 3, "kind must be 0 (lstm), 1 (gru), 2 (rnn_tanh) or 3 (rnn_relu)");
  TORCH_CHECK(x_in.scalar_type() == at::kFloat && h.scalar_type() == at::kFloat, "float32 only");
  // int8 keeps x and h apart too: one quantization scale for both would drown the smaller
  const bool apart = kind == kGRU || int8;
  const int64_t per_projection = int8 ? 6 : 2, projections = apart ? 2 : 1;
  const int64_t per_layer = per_projection * projections;
  TORCH_CHECK(h.dim() == 3 && (int64_t)weights.size() == h.size(0) * per_layer,
              "h must be (L, B, H) with ", per_layer, " weight tensors per layer");
  TORCH_CHECK(x_in.dim() == 2 && x_in.size(0) == h.size(1), "x must be (B, I) for h of shape (L, B, H)");
  const bool lstm = kind == kLSTM;
  const at::Tensor c = c_opt.has_value() ? c_opt->contiguous() : at::Tensor();
  TORCH_CHECK(!lstm || (c.defined() && c.sizes() == h.sizes() && c.scalar_type() == at::kFloat),
              "c must be float32 of h's shape");
  TORCH_CHECK(x_in.device().is_cpu() && h.device().is_cpu() && (!lstm || c.device().is_cpu()), "CPU tensors only");
  const int64_t L = h.size(0), B = h.size(1), H = h.size(2);
  auto h_in = h.contiguous();
  auto h_out = at::empty_like(h_in);
  auto c_out = lstm ? at::empty_like(c) : at::Tensor();
  at::Tensor x = x_in.contiguous();
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor* w = weights.data() + l * per_layer;
    const int64_t G = lstm ? 4 * H : kind == kGRU ? 3 * H : H;  // gate rows
    const int64_t in = x.size(1), cols = apart ? in : in + H;
    TORCH_CHECK(w[0].dim() == 2 && w[0].size(0) == G && w[0].size(1) == cols,
                "layer ", l, ": the weights are (", w[0].size(0), ", ", w[0].size(1), "), the input and state need (",
                G, ", ", cols, ")");
    TORCH_CHECK(!apart || (w[per_projection].size(0) == G && w[per_projection].size(1) == H),
                "layer ", l, ": W_hh must be (", G, ", ", H, ")");
    at::Tensor a, r;  // a: the gates' pre-activations (GRU: W_ih x + b_ih); r: GRU's W_hh h + b_hh
    if (apart) {
      a = project(x, w, int8).contiguous();
      r = project(h_in[l], w + per_projection, int8).contiguous();
      if (kind != kGRU) a.add_(r);  // only the GRU's n gate needs the two sums apart
    } else {  // [x; h] by hand: at::cat's dispatch costs about as much as the copy here
      at::Tensor xh = at::empty({B, cols}, x.options());
      for (int64_t b = 0; b < B; ++b) {
        float* dst = xh.data_ptr<float>() + b * cols;
        std::copy_n(x.data_ptr<float>() + b * in, in, dst);
        std::copy_n(h_in.data_ptr<float>() + (l * B + b) * H, H, dst + in);
      }
      a = project(xh, w, int8).contiguous();
    }
    for (int64_t b = 0; b < B; ++b) {
      const float* __restrict__ ab = a.data_ptr<float>() + b * G;
      const float* __restrict__ hb = h_in.data_ptr<float>() + (l * B + b) * H;
      float* __restrict__ ho = h_out.data_ptr<float>() + (l * B + b) * H;
      if (lstm) {
        const float* __restrict__ cb = c.data_ptr<float>() + (l * B + b) * H;
        float* __restrict__ co = c_out.data_ptr<float>() + (l * B + b) * H;
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {
          const float i = sigmoid(ab[j]), f = sigmoid(ab[H + j]);
          const float g = std::tanh(ab[2 * H + j]), o = sigmoid(ab[3 * H + j]);
          const float cn = f * cb[j] + i * g;
          co[j] = cn;
          ho[j] = o * std::tanh(cn);
        }
      } else if (kind == kGRU) {
        const float* __restrict__ rb = r.data_ptr<float>() + b * G;
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {
          const float rr = sigmoid(ab[j] + rb[j]), z = sigmoid(ab[H + j] + rb[H + j]);
          const float n = std::tanh(ab[2 * H + j] + rr * rb[2 * H + j]);
          ho[j] = (1.f - z) * n + z * hb[j];
        }
      } else {
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {
          ho[j] = kind == kTanh ? std::tanh(ab[j]) : std::max(ab[j], 0.f);
        }
      }
    }
    x = h_out[l];
  }
  return {h_out, c_out, x};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_step", &rnn_step, "one step of a stacked LSTM/GRU/RNN, inference, the whole stack in one call");
}
