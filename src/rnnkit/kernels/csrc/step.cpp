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
// A projection is [w^T, b] (float32; w^T is (K, G), contiguous) or [w_int8, packed,
// col_offsets, scale, zero_point, b] (fbgemm's dynamic int8 linear: weights quantized once,
// the input per call). Per layer: one projection of [x; h] (LSTM, RNN in float32) or two,
// of x and of h (GRU, int8).
//
// Why w^T: MKL's sgemv reads a column-major matrix (w^T stored by rows) about 1.4x faster
// than a row-major one at these sizes (measured 23 against 34 us for 1024 x 384, 1 thread),
// and at batch 1 the step is that one product. The float32 bias is added in the gate pass
// rather than by addmv (one pass over the gates instead of two).
#include <torch/csrc/autograd/python_variable.h>
#include <torch/extension.h>

#include <tuple>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace {

enum Kind { kLSTM = 0, kGRU = 1, kTanh = 2, kRelu = 3 };

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(std::min(-x, 80.f))); }

// (B, K) -> (B, G): v W^T, + b for int8 only (float32 adds b in the gate pass)
at::Tensor project(const at::Tensor& v, const at::Tensor* w, bool int8) {
  if (int8)
    return at::fbgemm_linear_int8_weight_fp32_activation(v, w[0], w[1], w[2], w[3].item<double>(),
                                                         w[4].item<int64_t>(), w[5]);
  if (v.size(0) == 1) return at::mv(w[0].t(), v[0]).unsqueeze(0);
  return at::mm(v, w[0]);
}

// Fortran BLAS, as ATen itself calls it (libtorch exports MKL's or OpenBLAS's); weak, so
// that a torch built without BLAS still loads this file and takes the ATen path
extern "C" void sgemv_(const char* trans, const int* m, const int* n, const float* alpha, const float* a,
                       const int* lda, const float* x, const int* incx, const float* beta, float* y,
                       const int* incy) __attribute__((weak));

// y (G) = W v for W stored as w^T (K, G), row-major: column-major W with leading dimension G
void gemv(const at::Tensor& wT, const float* v, float* y) {
  const int K = wT.size(0), G = wT.size(1), one = 1;
  const float alpha = 1.f, beta = 0.f;
  sgemv_("N", &G, &K, &alpha, wT.data_ptr<float>(), &G, v, &one, &beta, y, &one);
}

// the float32 bias of a projection, or zeros where fbgemm already added it
const float* bias_of(const at::Tensor* w, bool int8, const std::vector<float>& zeros) {
  return int8 ? zeros.data() : w[1].data_ptr<float>();
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
  const std::vector<float> zeros(int8 ? (lstm ? 4 : kind == kGRU ? 3 : 1) * H : 0, 0.f);
  for (int64_t l = 0; l < L; ++l) {
    const at::Tensor* w = weights.data() + l * per_layer;
    const int64_t G = lstm ? 4 * H : kind == kGRU ? 3 * H : H;  // gate rows
    const int64_t in = l == 0 ? x.size(1) : H, cols = apart ? in : in + H;
    // int8 keeps torch's (G, K) layout for fbgemm; float32 is w^T, (K, G)
    const auto shape_ok = [&](const at::Tensor& m, int64_t k) {
      return m.dim() == 2 && (int8 ? m.size(0) == G && m.size(1) == k
                                   : m.size(0) == k && m.size(1) == G && m.is_contiguous());
    };
    TORCH_CHECK(shape_ok(w[0], cols), "layer ", l, ": the weights are ", w[0].sizes(), ", the input and state need ",
                int8 ? "(G, K) = (" : "a contiguous (K, G) = (", int8 ? G : cols, ", ", int8 ? cols : G, ")");
    TORCH_CHECK(!apart || shape_ok(w[per_projection], H), "layer ", l, ": W_hh has the wrong shape ",
                w[per_projection].sizes());
    TORCH_CHECK(int8 || (w[1].numel() == G && (!apart || w[per_projection + 1].numel() == G)),
                "layer ", l, ": the biases must have ", G, " values");
    for (int64_t k = 0; k < per_layer && !int8; ++k)
      TORCH_CHECK(w[k].scalar_type() == at::kFloat, "layer ", l, ": the weights must be float32, got ",
                  w[k].scalar_type());
    const float* ba = bias_of(w, int8, zeros);
    const float* br = apart ? bias_of(w + per_projection, int8, zeros) : nullptr;
    // a: the gates' pre-activations (GRU: W_ih x); r: the GRU's W_hh h; biases still to add
    const float *a_ptr, *r_ptr = nullptr;
    at::Tensor a, r;  // where ATen computed them
    const at::Tensor x_l = l == 0 ? x : h_out[l - 1];
    if (!int8 && B == 1 && sgemv_ != nullptr) {  // straight to BLAS: no dispatch, no allocation
      thread_local std::vector<float> scratch;
      scratch.resize(cols + 2 * G);
      float* y = scratch.data() + cols;
      if (apart) {  // the GRU
        gemv(w[0], x_l.data_ptr<float>(), y);
        gemv(w[per_projection], h_in.data_ptr<float>() + l * H, y + G);
      } else {
        std::copy_n(x_l.data_ptr<float>(), in, scratch.data());
        std::copy_n(h_in.data_ptr<float>() + l * H, H, scratch.data() + in);
        gemv(w[0], scratch.data(), y);
      }
      a_ptr = y;
      r_ptr = y + G;
    } else if (apart) {
      a = project(x_l, w, int8).contiguous();
      r = project(h_in[l], w + per_projection, int8).contiguous();
      if (kind != kGRU) a.add_(r);  // only the GRU's n gate needs the two sums apart (int8: biases in)
      a_ptr = a.data_ptr<float>();
      r_ptr = r.data_ptr<float>();
    } else {  // [x; h] by hand: at::cat's dispatch costs about as much as the copy here
      at::Tensor xh = at::empty({B, cols}, x.options());
      for (int64_t b = 0; b < B; ++b) {
        float* dst = xh.data_ptr<float>() + b * cols;
        std::copy_n(x_l.data_ptr<float>() + b * in, in, dst);
        std::copy_n(h_in.data_ptr<float>() + (l * B + b) * H, H, dst + in);
      }
      a = project(xh, w, int8).contiguous();
      a_ptr = a.data_ptr<float>();
    }
    for (int64_t b = 0; b < B; ++b) {
      const float* __restrict__ ab = a_ptr + b * G;
      const float* __restrict__ hb = h_in.data_ptr<float>() + (l * B + b) * H;
      float* __restrict__ ho = h_out.data_ptr<float>() + (l * B + b) * H;
      if (lstm) {
        const float* __restrict__ cb = c.data_ptr<float>() + (l * B + b) * H;
        float* __restrict__ co = c_out.data_ptr<float>() + (l * B + b) * H;
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {
          const float i = sigmoid(ab[j] + ba[j]), f = sigmoid(ab[H + j] + ba[H + j]);
          const float g = std::tanh(ab[2 * H + j] + ba[2 * H + j]), o = sigmoid(ab[3 * H + j] + ba[3 * H + j]);
          const float cn = f * cb[j] + i * g;
          co[j] = cn;
          ho[j] = o * std::tanh(cn);
        }
      } else if (kind == kGRU) {
        const float* __restrict__ rb = r_ptr + b * G;
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {
          const float rr = sigmoid(ab[j] + ba[j] + rb[j] + br[j]);
          const float z = sigmoid(ab[H + j] + ba[H + j] + rb[H + j] + br[H + j]);
          const float n = std::tanh(ab[2 * H + j] + ba[2 * H + j] + rr * (rb[2 * H + j] + br[2 * H + j]));
          ho[j] = (1.f - z) * n + z * hb[j];
        }
      } else {
        _Pragma("omp simd") for (int64_t j = 0; j < H; ++j) {
          const float pre = ab[j] + ba[j];
          ho[j] = kind == kTanh ? std::tanh(pre) : std::max(pre, 0.f);
        }
      }
    }
  }
  return {h_out, c_out, h_out[L - 1]};
}

// The step weights of one layer stack, and the parameters they were made from. Streaming
// calls it once per frame, so the Python around the call is a large part of the step: this
// object checks the weights' freshness and the arguments itself, in C++.
class Stepper {
 public:
  // params: the weight owners' parameter dicts (read at every call: replacing a parameter
  // is seen as well as changing it in place)
  Stepper(int64_t kind, bool int8, std::vector<at::Tensor> weights, std::vector<py::dict> params)
      : kind_(kind), int8_(int8), weights_(std::move(weights)), params_(std::move(params)) {
    for_each_param([this](const at::Tensor& t) { seen_.push_back(key_of(t)); });
  }

  bool int8() const { return int8_; }

  // false once a parameter was replaced, moved, or changed in place (its version counter);
  // a change through .data, or to an inference tensor, leaves no trace
  bool fresh() const {
    size_t i = 0;
    bool same = true;
    for_each_param([&](const at::Tensor& t) { same = same && i < seen_.size() && seen_[i++] == key_of(t); });
    return same && i == seen_.size();
  }

  // the checked call: errors name the problem
  std::vector<at::Tensor> run(const at::Tensor& x, const at::Tensor& h, const std::optional<at::Tensor>& c) const {
    return rnn_step(kind_, x, h, c, weights_, int8_);
  }

  // the streaming call, (output, h_n) or (output, (h_n, c_n)) as the layer's step returns
  // them; None where gradients are on, the weights changed, or the arguments are anything
  // but what the kernel takes, and the caller then takes its checked path
  py::object stream(py::handle x, py::handle hx) const {
    if (at::GradMode::is_enabled() || !THPVariable_Check(x.ptr()) || !fresh()) return py::none();
    at::Tensor h, c;
    if (kind_ == kLSTM) {
      if (!py::isinstance<py::tuple>(hx) || py::len(hx) != 2) return py::none();
      py::handle h_obj = PyTuple_GET_ITEM(hx.ptr(), 0), c_obj = PyTuple_GET_ITEM(hx.ptr(), 1);
      if (!THPVariable_Check(h_obj.ptr()) || !THPVariable_Check(c_obj.ptr())) return py::none();
      h = THPVariable_Unpack(h_obj.ptr());
      c = THPVariable_Unpack(c_obj.ptr());
    } else {
      if (!THPVariable_Check(hx.ptr())) return py::none();
      h = THPVariable_Unpack(hx.ptr());
    }
    const at::Tensor& x_t = THPVariable_Unpack(x.ptr());
    if (x_t.dim() != 2) return py::none();
    std::vector<at::Tensor> got;
    try {
      got = rnn_step(kind_, x_t, h, kind_ == kLSTM ? std::optional<at::Tensor>(c) : std::nullopt, weights_, int8_);
    } catch (const c10::Error&) {
      return py::none();
    }
    if (kind_ == kLSTM) return py::make_tuple(got[2], py::make_tuple(got[0], got[1]));
    return py::make_tuple(got[2], got[0]);
  }

 private:
  using Key = std::tuple<const void*, const void*, uint32_t>;  // tensor, data, version
  static Key key_of(const at::Tensor& t) {
    // a model made under inference_mode has inference tensors, which keep no version counter
    return {t.unsafeGetTensorImpl(), t.data_ptr(), t.is_inference() ? 0 : t._version()};
  }
  template <typename F>
  void for_each_param(F&& f) const {
    for (const auto& d : params_)
      for (auto item : d)
        if (THPVariable_Check(item.second.ptr())) f(THPVariable_Unpack(item.second.ptr()));
  }

  int64_t kind_;
  bool int8_;
  std::vector<at::Tensor> weights_;
  std::vector<py::dict> params_;
  std::vector<Key> seen_;
};

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_step", &rnn_step, "one step of a stacked LSTM/GRU/RNN, inference, the whole stack in one call");
  py::class_<Stepper>(m, "Stepper")
      .def(py::init<int64_t, bool, std::vector<at::Tensor>, std::vector<py::dict>>())
      .def_property_readonly("int8", &Stepper::int8)
      .def("fresh", &Stepper::fresh)
      .def("run", &Stepper::run)
      .def("stream", &Stepper::stream);
}
