// The time loop of the LSTM and GRU variants (CPU): layer norm, peepholes, recurrent
// dropout, zoneout and the GRU with the reset gate before the product, forward and
// backward, in compiled code.
//
// PyTorch computes the input side x W_ih^T of every step in one GEMM beforehand (with its
// bias; for the layer-norm cells, their LayerNorm N_i and bias are applied here, a row at a
// time); this file runs the recurrence. A row's recurrence never reads another row, so the
// rows are split into one block per thread and each thread runs its block through every
// step with no waiting: per step one product with W_hh for the block's rows (two for the
// reset-before GRU), straight to BLAS, then the gate math of each row in one fused pass.
// The backward pass walks time in reverse with the same structure; the weight gradient
// dW_hh = sum_t du_t^T hd_t is one GEMM over all steps at the end, or, with layer norm,
// summed every few steps per block (to keep d(product) of a few steps only).
//
// Measured on 2 cores (docs/performance.md): a block per thread with MKL's packed weights
// made the layer-norm LSTM's forward 1.5x faster than one ATen GEMM over all rows a step
// followed by a parallel gate pass, which made each thread read the other's rows.
//
// Kinds (gate layout as torch.nn):
//   0 LSTM   a = xg + N(hd W_hh^T) + b_hh;  (i, f, g, o) = a, peepholes optional
//            c' = s(f + p_f c) c + s(i + p_i c) tanh(g);  h' = s(o + p_o c') tanh(N_c(c'))
//   1 GRU    u = N(hd W_hh^T) + b_hh;  r = s(x_r + u_r), z = s(x_z + u_z)
//            n = tanh(x_n + r u_n);  h' = (1 - z) n + z h
//   2 GRU, reset before the product:  (u_r, u_z) = hd W_rz^T + b_rz,  r, z as above
//            n = tanh(x_n + (r hd) W_n^T + b_n);  h' = (1 - z) n + z h
// N is a LayerNorm with a gain only (where given), N_c one with gain and shift.
// hd = h * mask with recurrent dropout (one mask per sequence), else h: the products read
// it, while the GRU's carry term z h reads the state itself, as in the reference cells. A
// GRU with a mask therefore saves h itself for the backward (as hd) and masks it where a
// product reads it.
// Zoneout: state' = m * state + (1 - m) * new, per unit and step, m from the caller
// (0/1 draws in training, the probability itself at evaluation).
// Rows stop at their length: later steps output 0 and leave the state alone.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include "sigmoid.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

using at::Tensor;
using OptTensor = std::optional<Tensor>;

namespace {

using rnnkit::sigmoid;

// An optional tensor is absent when None, undefined or empty (the Python side's None)
bool given(const OptTensor& t) { return t && t->defined() && t->numel(); }

template <typename T>
const T* data_or_null(const OptTensor& t) {
  return given(t) ? t->data_ptr<T>() : nullptr;
}

Tensor empty_like_or_none(bool needed, at::IntArrayRef shape, const Tensor& like, bool zeroed = false) {
  if (!needed) return at::empty({0}, like.options());
  return zeroed ? at::zeros(shape, like.options()) : at::empty(shape, like.options());
}

// LayerNorm statistics of one row: (mean, 1 / standard deviation)
template <typename T>
std::pair<T, T> moments(const T* x, int64_t n, double eps) {
  // accumulated in T: a float32 row of 1024 loses ~1e-6 relative, as torch's own LayerNorm
  T sum = 0, sq = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  const T m = sum / T(n);
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < n; ++j) sq += (x[j] - m) * (x[j] - m);
  return {m, T(1) / std::sqrt(sq / T(n) + T(eps))};
}

// xhat = (x - mean) * rstd
template <typename T>
void standardize(const T* x, T mean, T rstd, T* xhat, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) xhat[j] = (x[j] - mean) * rstd;
}

// LayerNorm of one row without its gain: writes xhat, returns rstd
template <typename T>
T normalize(const T* x, T* xhat, int64_t n, double eps) {
  const auto [mean, rstd] = moments(x, n, eps);
  standardize(x, mean, rstd, xhat, n);
  return rstd;
}

// d(LayerNorm input) of one row from dy = d(output), written over dy
template <typename T>
void normalize_backward(T* dy, const T* xhat, const T* gain, T rstd, int64_t n) {
  T mean_d = 0, mean_dx = 0;
#pragma omp simd reduction(+ : mean_d, mean_dx)
  for (int64_t j = 0; j < n; ++j) {
    mean_d += dy[j] * gain[j];
    mean_dx += dy[j] * gain[j] * xhat[j];
  }
  const T a = mean_d / T(n), c = mean_dx / T(n);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dy[j] = rstd * (dy[j] * gain[j] - a - xhat[j] * c);
}

// sum over the rows of a (R, C), or of a * b elementwise: one parameter's gradient over
// all steps and rows, without a temporary the size of a. a, b: 2-D, unit column stride
// (column slices of a wider buffer are fine)
template <typename T>
Tensor column_sum(const Tensor& a, const Tensor& b = Tensor()) {
  TORCH_CHECK(a.dim() == 2 && a.stride(1) == 1 && (!b.defined() || (b.sizes() == a.sizes() && b.stride(1) == 1)),
              "column_sum: 2-D views with unit column stride");
  const int64_t R = a.size(0), C = a.size(1), lda = a.stride(0), ldb = b.defined() ? b.stride(0) : 0;
  Tensor out = at::empty({C}, a.options());
  const T *a_p = a.data_ptr<T>(), *b_p = b.defined() ? b.data_ptr<T>() : nullptr;
  T* o_p = out.data_ptr<T>();
  // a small sum stays on this thread: waking a second one would cost more than the sum
  const int64_t grain = R * C < (int64_t(1) << 16) ? C : 64;
  at::parallel_for(0, C, grain, [&](int64_t c0, int64_t c1) {
    std::vector<T> acc(c1 - c0, T(0));
    for (int64_t r = 0; r < R; ++r) {
      const T* a_r = a_p + r * lda + c0;
      if (b_p) {
        const T* b_r = b_p + r * ldb + c0;
#pragma omp simd
        for (int64_t c = 0; c < c1 - c0; ++c) acc[c] += a_r[c] * b_r[c];
      } else {
#pragma omp simd
        for (int64_t c = 0; c < c1 - c0; ++c) acc[c] += a_r[c];
      }
    }
    std::copy(acc.begin(), acc.end(), o_p + c0);
  });
  return out;
}

// BLAS, as ATen itself calls it (libtorch exports MKL's or OpenBLAS's); weak, so that a
// torch without it still loads this file and takes the ATen path. MKL's packed GEMM too.
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
}
enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162 };

template <typename T>
void gemm(const char* ta, const char* tb, int m, int n, int k, T alpha, const T* a, int lda, const T* b, int ldb,
          T beta, T* c, int ldc) {
  if constexpr (std::is_same_v<T, float>) sgemm_(ta, tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
  else dgemm_(ta, tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}

// Whether the products can run inside the loop's threads: straight to BLAS (ATen's ops
// would need the calling thread's thread-local state there). RNNKIT_NO_BLAS=1, read at each
// call, takes ATen's products on one thread instead: the tests' way to that path, and a way
// around a BLAS that misbehaves when several threads call it at once.
template <typename T>
bool blas_at_hand() {
  const char* off = std::getenv("RNNKIT_NO_BLAS");
  if (off && *off && std::string(off) != "0") return false;
  return std::is_same_v<T, float> ? sgemm_ != nullptr : dgemm_ != nullptr;
}

// The rows in blocks, a block per thread, each block through every step: a row's recurrence
// reads no other row, so the threads never wait for each other. One block where the
// products cannot run in the threads.
template <typename T>
struct Blocks {
  int64_t B;
  bool blas = blas_at_hand<T>();
  int64_t rows = blas ? (B + at::get_num_threads() - 1) / at::get_num_threads() : B;
  int64_t n = (B + rows - 1) / rows;  // none empty: 4 rows on 3 threads are 2 blocks of 2

  template <typename F>  // f(block, first row, end row)
  void run(const F& f) const {
    at::parallel_for(0, n, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) f(k, k * rows, std::min(B, (k + 1) * rows));
    });
  }
};

// One weight's product with a block of rows, row-major: y (m, n) = x (m, k) W^T for W (n, k)
// (the forward), or x (m, k) W for W (k, n) (the backward). float32 with MKL, over at least
// kPackSteps steps: W in MKL's packed layout, made once per call, which its GEMM reads
// faster at these shapes (32 rows: 7-9 against 11-16 ms for 128 steps; packing 1024 x 256
// takes 0.05 ms, about one step); else BLAS; without BLAS, ATen (from one thread only).
constexpr int64_t kPackSteps = 4;

template <typename T>
class Product {
 public:
  Product(const Tensor& w, bool transposed, const Blocks<T>& blocks, int64_t steps)
      : w_(w.contiguous()),
        blas_(blocks.blas),
        t_(transposed),
        n_(w.size(transposed ? 0 : 1)),
        k_(w.size(transposed ? 1 : 0)) {
    if constexpr (std::is_same_v<T, float>) {
      if (steps >= kPackSteps && blas_ && cblas_sgemm_pack && cblas_sgemm_compute && cblas_sgemm_pack_get_size) {
        const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, blocks.rows, n_, k_);
        packed_ = at::empty({int64_t(bytes / sizeof(float)) + 1}, w.options());
        cblas_sgemm_pack(kRowMajor, kBMatrix, t_ ? kTrans : kNoTrans, blocks.rows, n_, k_, 1.f, w_.data_ptr<float>(),
                         w_.size(1), packed_.data_ptr<float>());
      }
    }
  }

  // y = x op(W) for m rows of x, ldx apart
  void operator()(const T* x, int64_t ldx, int64_t m, T* y) const {
    if constexpr (std::is_same_v<T, float>) {
      if (packed_.defined()) {
        cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, m, n_, k_, x, ldx, packed_.data_ptr<float>(), n_, 0.f, y,
                            n_);
        return;
      }
    }
    if (blas_) {  // column-major: y^T = op(W)^T x^T
      gemm<T>(t_ ? "T" : "N", "N", n_, m, k_, T(1), w_.data_ptr<T>(), w_.size(1), x, ldx, T(0), y, n_);
      return;
    }
    Tensor x_ = at::from_blob(const_cast<T*>(x), {m, k_}, {ldx, 1}, w_.options());
    Tensor y_ = at::from_blob(y, {m, n_}, w_.options());
    at::mm_out(y_, x_, t_ ? w_.t() : w_);
  }

 private:
  Tensor w_, packed_;
  bool blas_, t_;
  int64_t n_, k_;
};

// dW (n, k) = beta dW + dy^T x over m rows: dy (m, n), x (m, k, rows ldx apart); dW is not
// read where beta = 0. BLAS or, as Product, ATen.
template <typename T>
void add_outer(bool blas, T* dw, int64_t n, int64_t k, const T* dy, const T* x, int64_t ldx, int64_t m, T beta) {
  if (blas) {  // column-major: dW^T (k, n) = beta dW^T + x^T (k, m) dy (m, n)
    gemm<T>("N", "T", k, n, m, T(1), x, ldx, dy, n, beta, dw, k);
    return;
  }
  const auto opt = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  Tensor dw_ = at::from_blob(dw, {n, k}, opt);
  Tensor dy_ = at::from_blob(const_cast<T*>(dy), {m, n}, opt);
  dw_.addmm_(dy_.t(), at::from_blob(const_cast<T*>(x), {m, k}, {ldx, 1}, opt), beta);
}


// Steps whose weight gradient is summed in one product (the layer-norm cells' backward)
constexpr int64_t kSteps = 8;

struct Dims {
  int64_t T, B, H, G;
};

Dims dims_of(int64_t kind, const Tensor& xg, const Tensor& h0) {
  TORCH_CHECK(kind >= 0 && kind <= 2, "rnn_loop: kind must be 0, 1 or 2, got ", kind);
  TORCH_CHECK(xg.dim() == 3 && h0.dim() == 2, "rnn_loop: xg must be (B, T, G) and h0 (B, H)");
  const int64_t H = h0.size(1), G = xg.size(2);
  TORCH_CHECK(G == (kind == 0 ? 4 : 3) * H, "rnn_loop: xg has ", G, " gate columns for H = ", H);
  TORCH_CHECK(h0.size(0) == xg.size(0), "rnn_loop: h0 has ", h0.size(0), " rows, xg ", xg.size(0));
  return {xg.size(1), xg.size(0), H, G};
}

void check_inputs(const Dims& d, const std::vector<Tensor>& dense, const Tensor& lengths) {
  for (const auto& t : dense) {
    TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), "rnn_loop: CPU contiguous tensors only");
    TORCH_CHECK(t.scalar_type() == dense[0].scalar_type(), "rnn_loop: all tensors must share one dtype");
  }
  TORCH_CHECK(lengths.device().is_cpu() && lengths.scalar_type() == at::kLong && lengths.dim() == 1 &&
                  lengths.size(0) == d.B && lengths.is_contiguous(),
              "rnn_loop: lengths must be a contiguous CPU int64 tensor of ", d.B, " rows");
  const int64_t* len = lengths.data_ptr<int64_t>();
  for (int64_t b = 0; b < d.B; ++b)
    TORCH_CHECK(len[b] >= 0 && len[b] <= d.T, "rnn_loop: length ", len[b], " outside [0, ", d.T, "]");
}

std::vector<Tensor> present(std::initializer_list<OptTensor> opts) {
  std::vector<Tensor> out;
  for (const auto& o : opts)
    if (given(o)) out.push_back(*o);
  return out;
}

// ---------------------------------------------------------------------------------------
// forward
// xg and out are batch-major (B,T,.), as the layers hold them; what is saved is time-major
// (T,B,.), so that a block's rows at one step are one matrix for the products.
// Returns [out (B,T,H), h_T, c_T (LSTM; else empty), *saved]. Saved, per kind:
//   LSTM: hd (T,B,H; empty with N and no mask), act (T,B,4H) = s(i), s(f), tanh(g), s(o);
//         c_prev, c_new (T,B,H); with N: uhat (T,B,G), rstd (T,B); with N_c: chat (T,B,H),
//         rstd_c (T,B)
//   GRU:  hd (h itself: see above), act (T,B,3H) = r, z, n; u_n (T,B,H; empty with N); with N:
//         uhat, rstd
//   GRU2: hd, act = r, z, n; rh (T,B,H) = r hd
// and last, with N, N_i's row statistics mean_i, rstd_i (T,B).
template <typename T>
std::vector<Tensor> forward_impl(int64_t kind, const Tensor& xg, const Tensor& h0, const OptTensor& c0,
                                 const Tensor& w_hh, const Tensor& b_hh, const OptTensor& ln_w,
                                 const OptTensor& lnc_w, const OptTensor& lnc_b, const OptTensor& peep,
                                 const OptTensor& mask, const OptTensor& zh, const OptTensor& zc,
                                 const OptTensor& lni_w, const OptTensor& b_ih, const Tensor& lengths, double eps) {
  const Dims d = dims_of(kind, xg, h0);
  const int64_t Tn = d.T, B = d.B, H = d.H, G = d.G;
  const bool lstm = kind == 0, ln = data_or_null<T>(ln_w), lnc = data_or_null<T>(lnc_w);
  auto opt = xg.options();
  Tensor out = at::empty({B, Tn, H}, opt), h = h0.clone();
  Tensor c = lstm ? c0->clone() : at::empty({0}, opt);
  // finished rows' steps are never written: with ragged rows the saved tensors start at
  // zero, so that the gradient sums over all steps read no stale memory there
  const int64_t* len = lengths.data_ptr<int64_t>();
  const bool z = *std::min_element(len, len + B) < Tn;
  // with N and no dropout mask, h_{t-1} is not stored: the backward reads it from out (memory)
  const bool keep_hd = !(ln && !data_or_null<T>(mask));
  Tensor hd = empty_like_or_none(keep_hd, {Tn, B, H}, xg), act = empty_like_or_none(true, {Tn, B, G}, xg, z);
  Tensor c_prev = empty_like_or_none(lstm, {Tn, B, H}, xg, z), c_new = empty_like_or_none(lstm, {Tn, B, H}, xg, z);
  Tensor uhat = empty_like_or_none(ln, {Tn, B, G}, xg, z), rstd = empty_like_or_none(ln, {Tn, B}, xg, z);
  Tensor chat = empty_like_or_none(lnc, {Tn, B, H}, xg, z), rstd_c = empty_like_or_none(lnc, {Tn, B}, xg, z);
  Tensor u_n = empty_like_or_none(kind == 1 && !ln, {Tn, B, H}, xg, z);
  Tensor rh = empty_like_or_none(kind == 2, {Tn, B, H}, xg, z);
  // N_i, the input side's LayerNorm (gain lni_w, then + b_ih), which comes with N: its row
  // statistics only, the backward normalises xg again (cheaper than writing xhat)
  Tensor mean_i = empty_like_or_none(ln, {Tn, B}, xg, z), rstd_i = empty_like_or_none(ln, {Tn, B}, xg, z);
  const int64_t GU = kind == 2 ? 2 * H : G;  // columns of the (first) recurrent product
  Tensor u = at::empty({B, GU}, opt), u2 = at::empty({B, kind == 2 ? H : 0}, opt);
  const Blocks<T> blocks{B};
  const Product<T> product(w_hh.narrow(0, 0, GU), true, blocks, Tn);
  const std::optional<Product<T>> product_n =
      kind == 2 ? std::make_optional<Product<T>>(w_hh.narrow(0, 2 * H, H), true, blocks, Tn) : std::nullopt;

  // absent options become neutral arrays (peepholes 0, zoneout 0, gain 1, shift 0), so that
  // each loop below is one branch-free simd loop (glibc's vector exp and tanh)
  const std::vector<T> zeros(G, T(0)), ones(G, T(1));
  const T *xg_p = xg.data_ptr<T>(), *b_p = b_hh.data_ptr<T>(), *m_p = data_or_null<T>(mask);
  const T *lnw = data_or_null<T>(ln_w), *pp = data_or_null<T>(peep), *zh_p = data_or_null<T>(zh);
  const T *zc_p = data_or_null<T>(zc), *lncw = lnc ? data_or_null<T>(lnc_w) : ones.data();
  const T *lncb = lnc ? data_or_null<T>(lnc_b) : zeros.data();
  const T *p_i = pp ? pp : zeros.data(), *p_f = pp ? pp + H : zeros.data(), *p_o = pp ? pp + 2 * H : zeros.data();
  T *h_p = h.data_ptr<T>(), *c_p = lstm ? c.data_ptr<T>() : nullptr, *out_p = out.data_ptr<T>();
  T *hd_p = keep_hd ? hd.data_ptr<T>() : nullptr, *act_p = act.data_ptr<T>(), *u_p = u.data_ptr<T>();
  T *rh_p = kind == 2 ? rh.data_ptr<T>() : nullptr, *u2_p = u2.data_ptr<T>();

  const T *gain_i = data_or_null<T>(lni_w), *b_i = given(b_ih) ? data_or_null<T>(b_ih) : zeros.data();
  T *mean_i_p = ln ? mean_i.data_ptr<T>() : nullptr, *rstd_i_p = ln ? rstd_i.data_ptr<T>() : nullptr;
  const bool whole_hd = !lstm && m_p;  // hd keeps h itself (see the top of the file)
  blocks.run([&](int64_t, int64_t b0, int64_t b1) {
    std::vector<T> xrow(ln ? G : 0), dropped(whole_hd ? B * H : 0);
    for (int64_t t = 0; t < Tn; ++t) {
      const int64_t tb = t * B;
      T* hd_t = keep_hd ? hd_p + tb * H : h_p;  // a row reads its own h before it writes it
      T* in_t = whole_hd ? dropped.data() : hd_t;  // what the products read, rows from 0
      if (m_p) {
        for (int64_t k = b0 * H; k < b1 * H; ++k) in_t[k] = h_p[k] * m_p[k];
        if (whole_hd) std::copy(h_p + b0 * H, h_p + b1 * H, hd_t + b0 * H);
      } else if (keep_hd) {
        std::copy(h_p + b0 * H, h_p + b1 * H, hd_t + b0 * H);
      }
      product(in_t + b0 * H, H, b1 - b0, u_p + b0 * GU);
      auto rows = [&](int pass) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = tb + b, xrow_i = b * Tn + t;  // row: time-major buffers; xrow_i: xg and out
          T *o_r = out_p + xrow_i * H, *h_r = h_p + b * H, *a_r = act_p + row * G;
          if (t >= len[b]) {
            if (pass == 0) std::fill(o_r, o_r + H, T(0));
            continue;
          }
          const T *x_r = xg_p + xrow_i * G, *hd_r = in_t + b * H, *zh_r = zh_p ? zh_p + row * H : zeros.data();
          if (ln) {  // xg = N_i(x W_ih^T) + b_ih
            const auto [m, r] = moments(x_r, G, eps);
            mean_i_p[row] = m;
            rstd_i_p[row] = r;
#pragma omp simd
            for (int64_t k = 0; k < G; ++k) xrow[k] = (x_r[k] - m) * r * gain_i[k] + b_i[k];
            x_r = xrow.data();
          }
          T* u_r = u_p + b * GU;
          if (kind == 2 && pass == 0) {  // r and z, then r * hd for the second product
            T* rh_r = rh.data_ptr<T>() + row * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T r = sigmoid(x_r[j] + u_r[j] + b_p[j]), z = sigmoid(x_r[H + j] + u_r[H + j] + b_p[H + j]);
              a_r[j] = r;
              a_r[H + j] = z;
              rh_r[j] = r * hd_r[j];
            }
            continue;
          }
          if (ln) {
            T* uh_r = uhat.data_ptr<T>() + row * G;
            rstd.data_ptr<T>()[row] = normalize(u_r, uh_r, G, eps);
#pragma omp simd
            for (int64_t k = 0; k < G; ++k) u_r[k] = uh_r[k] * lnw[k];
          }
          if (lstm) {
            T *cp_r = c_prev.data_ptr<T>() + row * H, *cn_r = c_new.data_ptr<T>() + row * H, *c_r = c_p + b * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T c_old = c_r[j];
              const T i = sigmoid(x_r[j] + u_r[j] + b_p[j] + p_i[j] * c_old);
              const T f = sigmoid(x_r[H + j] + u_r[H + j] + b_p[H + j] + p_f[j] * c_old);
              const T g = std::tanh(x_r[2 * H + j] + u_r[2 * H + j] + b_p[2 * H + j]);
              const T c1 = f * c_old + i * g;
              a_r[j] = i;
              a_r[H + j] = f;
              a_r[2 * H + j] = g;
              a_r[3 * H + j] = sigmoid(x_r[3 * H + j] + u_r[3 * H + j] + b_p[3 * H + j] + p_o[j] * c1);
              cp_r[j] = c_old;
              cn_r[j] = c1;
            }
            const T* c_in = cn_r;  // N_c's input, or its normalised value
            if (lnc) {
              T* ch_r = chat.data_ptr<T>() + row * H;
              rstd_c.data_ptr<T>()[row] = normalize(cn_r, ch_r, H, eps);
              c_in = ch_r;
            }
            const T* zc_r = zc_p ? zc_p + row * H : zeros.data();
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T h1 = a_r[3 * H + j] * std::tanh(c_in[j] * lncw[j] + lncb[j]);
              h_r[j] = zh_r[j] * h_r[j] + (T(1) - zh_r[j]) * h1;
              c_r[j] = zc_r[j] * c_r[j] + (T(1) - zc_r[j]) * cn_r[j];
              o_r[j] = h_r[j];
            }
          } else if (kind == 1) {  // u holds all three products
            T* un_r = ln ? u_r + 2 * H : u_n.data_ptr<T>() + row * H;  // the backward makes it from uhat with N
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T r = sigmoid(x_r[j] + u_r[j] + b_p[j]), z = sigmoid(x_r[H + j] + u_r[H + j] + b_p[H + j]);
              un_r[j] = u_r[2 * H + j] + b_p[2 * H + j];
              const T n = std::tanh(x_r[2 * H + j] + r * un_r[j]);
              a_r[j] = r;
              a_r[H + j] = z;
              a_r[2 * H + j] = n;
              const T h1 = (T(1) - z) * n + z * h_r[j];  // h_r: still h_{t-1}
              h_r[j] = zh_r[j] * h_r[j] + (T(1) - zh_r[j]) * h1;
              o_r[j] = h_r[j];
            }
          } else {  // kind 2's second pass: u2 holds (r hd) W_n^T
            const T* un = u2.data_ptr<T>() + b * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T z = a_r[H + j], n = std::tanh(x_r[2 * H + j] + un[j] + b_p[2 * H + j]);
              a_r[2 * H + j] = n;
              const T h1 = (T(1) - z) * n + z * h_r[j];  // h_r: still h_{t-1}
              h_r[j] = zh_r[j] * h_r[j] + (T(1) - zh_r[j]) * h1;
              o_r[j] = h_r[j];
            }
          }
        }
      };
      rows(0);
      if (kind == 2) {
        (*product_n)(rh_p + (tb + b0) * H, H, b1 - b0, u2_p + b0 * H);
        rows(1);
      }
    }
  });
  std::vector<Tensor> result{out, h, c, hd, act};
  if (lstm) {
    result.insert(result.end(), {c_prev, c_new});
    if (ln) result.insert(result.end(), {uhat, rstd});
    if (lnc) result.insert(result.end(), {chat, rstd_c});
  } else if (kind == 1) {
    if (!ln) result.push_back(u_n);
    if (ln) result.insert(result.end(), {uhat, rstd});
  } else {
    result.push_back(rh);
  }
  if (ln) result.insert(result.end(), {mean_i, rstd_i});
  return result;
}

// ---------------------------------------------------------------------------------------
// backward: [d xg (T,B,G: time-major; with N, d(x W_ih^T) through N_i, batch-major B,T,G),
// d h0, d c0, d W_hh, d b_hh, d ln_w, d lnc_w, d lnc_b, d peep, d lni_w, d b_ih], an empty
// tensor where the input was absent. grad_out is batch-major (B,T,H); out is read only
// where hd was not saved; xg (the forward's, B,T,G) only with N.
// Buffers over all steps, without N: da = d(gate pre-activation) = d xg; du = d(recurrent
// product) (the LSTM's is da itself); kind 2: du_n = d(rh W_n^T + b_n).
// With N, each row's step goes through both LayerNorms' backward at once: a row's parameter
// gradients are summed over its steps in sums (B, 4G [+ 2H]), added over the rows in a fixed
// order at the end; du and h_{t-1} are kept for the last kSteps steps only, in a ring per
// block of rows, and dW_hh takes them in one product every kSteps steps (one sum per block,
// added in block order at the end). Buffers over all steps would cost the layer-norm cells a
// quarter more memory than torch.nn's LSTM and passes over memory after the loop.
template <typename T>
std::vector<Tensor> backward_impl(int64_t kind, const Tensor& grad_out, const Tensor& grad_h, const OptTensor& grad_c,
                                  const Tensor& out, const Tensor& h0, const Tensor& w_hh, const Tensor& b_hh,
                                  const OptTensor& ln_w, const OptTensor& lnc_w,
                                  const OptTensor& lnc_b, const OptTensor& peep, const OptTensor& mask, const OptTensor& zh,
                                  const OptTensor& zc, const OptTensor& lni_w, const OptTensor& xg,
                                  const Tensor& lengths, const std::vector<Tensor>& saved) {
  const int64_t B = grad_out.size(0), Tn = grad_out.size(1), H = grad_out.size(2), G = w_hh.size(0);
  const bool lstm = kind == 0, ln = data_or_null<T>(ln_w), lnc = data_or_null<T>(lnc_w);
  auto opt = grad_out.options();
  size_t k = 0;
  const Tensor hd = saved[k++], act = saved[k++];
  Tensor c_prev, c_new, u_n, rh, uhat, rstd, chat, rstd_c;
  if (lstm) {
    c_prev = saved[k++];
    c_new = saved[k++];
  } else if (kind == 1) {
    if (!ln) u_n = saved[k++];
  } else {
    rh = saved[k++];
  }
  if (ln) {
    uhat = saved[k++];
    rstd = saved[k++];
  }
  if (lnc) {
    chat = saved[k++];
    rstd_c = saved[k++];
  }
  Tensor mean_i, rstd_i;  // N_i's
  if (ln) {
    mean_i = saved[k++];
    rstd_i = saved[k++];
  }
  const int64_t GU = kind == 2 ? 2 * H : G;  // columns of the (first) recurrent product
  Tensor dx = ln ? at::empty({B, Tn, G}, opt) : Tensor();  // d(x W_ih^T) through N_i
  Tensor da = ln ? at::empty({B, G}, opt) : at::empty({Tn, B, G}, opt);
  const Blocks<T> blocks{B};
  // with N, du and h_{t-1} of the last S steps, per block of rows, (S * rows, .) each: dW_hh
  // takes them in one product every S steps (one a step was 1.3x slower)
  const int64_t S = std::min(kSteps, Tn);
  Tensor du = ln ? at::empty({blocks.n, S * blocks.rows, GU}, opt) : lstm ? da : at::empty({Tn, B, GU}, opt);
  Tensor hd_ring = ln ? at::empty({blocks.n, S * blocks.rows, H}, opt) : Tensor();
  // with N, dW_hh summed over the steps per block of rows: the first block's sum in dw, the
  // others' in dw_more, added in block order at the end
  Tensor dw = ln ? at::empty({G, H}, opt) : Tensor(), dw_more = ln ? at::empty({blocks.n - 1, G, H}, opt) : Tensor();
  // with N, each row's sums over its steps: d b_ih, d lni_w, d b_hh, d ln_w (G each), then
  // with N_c d lnc_w, d lnc_b (H each)
  const int64_t SW = 4 * G + (lnc ? 2 * H : 0);
  Tensor sums = ln ? at::zeros({B, SW}, opt) : Tensor();
  Tensor du_n = empty_like_or_none(kind == 2, {Tn, B, H}, grad_out);
  Tensor dcn = empty_like_or_none(lnc, {B, H}, grad_out);  // one step's d(N_c output)
  Tensor dh = grad_h.clone(), dc = lstm ? grad_c->clone() : at::empty({0}, opt);
  Tensor carry = at::zeros({B, H}, opt), dhd = at::empty({B, H}, opt), drh = at::empty({B, H}, opt);
  const Product<T> product(w_hh.narrow(0, 0, GU), false, blocks, Tn);
  const std::optional<Product<T>> product_n =
      kind == 2 ? std::make_optional<Product<T>>(w_hh.narrow(0, 2 * H, H), false, blocks, Tn) : std::nullopt;

  const std::vector<T> zeros(H, T(0)), ones(H, T(1));  // absent options: neutral arrays, as in the forward
  const int64_t* len = lengths.data_ptr<int64_t>();
  const bool keep_hd = hd.numel() > 0;  // else h_{t-1} is out's previous step, or h0
  const T *go = grad_out.data_ptr<T>(), *hd_p = keep_hd ? hd.data_ptr<T>() : nullptr, *act_p = act.data_ptr<T>();
  const T *out_p = out.data_ptr<T>(), *h0_p = h0.data_ptr<T>(), *b_p = b_hh.data_ptr<T>();
  // h_{t-1} as saved for row b (dropped with a mask, but for a GRU's): (pointer, distance between rows)
  auto hd_row = [&](int64_t t, int64_t b) -> std::pair<const T*, int64_t> {
    if (keep_hd) return {hd_p + (t * B + b) * H, H};
    return t > 0 ? std::make_pair(out_p + (b * Tn + t - 1) * H, Tn * H) : std::make_pair(h0_p + b * H, H);
  };
  const T *m_p = data_or_null<T>(mask), *zh_p = data_or_null<T>(zh), *zc_p = data_or_null<T>(zc);
  TORCH_CHECK(keep_hd || out.numel() == B * Tn * H, "rnn_loop_backward: out is needed where hd was not saved");
  const T *lnw = data_or_null<T>(ln_w), *pp = data_or_null<T>(peep);
  const T *lncw = lnc ? data_or_null<T>(lnc_w) : ones.data(), *lncb = lnc ? data_or_null<T>(lnc_b) : zeros.data();
  const T *p_i = pp ? pp : zeros.data(), *p_f = pp ? pp + H : zeros.data(), *p_o = pp ? pp + 2 * H : zeros.data();
  T *dh_p = dh.data_ptr<T>(), *du_p = du.data_ptr<T>();
  T *carry_p = carry.data_ptr<T>(), *dhd_p = dhd.data_ptr<T>(), *drh_p = drh.data_ptr<T>();
  const T *xg_p = ln ? xg->data_ptr<T>() : nullptr, *gain_i = data_or_null<T>(lni_w);
  const T *mean_i_p = ln ? mean_i.data_ptr<T>() : nullptr, *rstd_i_p = ln ? rstd_i.data_ptr<T>() : nullptr;

  blocks.run([&](int64_t block, int64_t b0, int64_t b1) {
    std::vector<T> xhat(ln ? G : 0);  // N_i's normalised input of a row, made again
    const int64_t R = b1 - b0;  // rows a ring slot holds
    T *ring_du = ln ? du_p + block * S * blocks.rows * GU : nullptr;
    T *ring_hd = ln ? hd_ring.data_ptr<T>() + block * S * blocks.rows * H : nullptr;
    T* dw_block = !ln ? nullptr : block == 0 ? dw.data_ptr<T>() : dw_more.data_ptr<T>() + (block - 1) * G * H;
    for (int64_t t = Tn - 1; t >= 0; --t) {
      const int64_t tb = t * B, slot = t % kSteps;
      // this step's du rows: the block's ring slot with N, else the step's rows over all steps
      T* du_t = ln ? ring_du + slot * R * GU : du_p + (tb + b0) * GU;
      auto rows = [&](int pass) {
        for (int64_t b = b0; b < b1; ++b) {
          const int64_t row = tb + b;
          T *da_r = da.data_ptr<T>() + (ln ? b : row) * G, *du_r = du_t + (b - b0) * GU;
          T *dh_r = dh_p + b * H, *carry_r = carry_p + b * H;
          T* dn_r = kind == 2 ? du_n.data_ptr<T>() + row * H : nullptr;
          if (t >= len[b]) {  // finished: nothing happens at this step, dh and dc pass through
            if (pass > 0) continue;
            std::fill(da_r, da_r + G, T(0));
            if (ln) std::fill_n(dx.data_ptr<T>() + (b * Tn + t) * G, G, T(0));
            std::fill(du_r, du_r + GU, T(0));
            if (dn_r) std::fill(dn_r, dn_r + H, T(0));
            std::fill(carry_r, carry_r + H, T(0));
            continue;
          }
          const T *go_r = go + (b * Tn + t) * H, *a_r = act_p + row * G;
          const T* hd_r = hd_row(t, b).first;  // a GRU's h_{t-1} itself
          const T* m_r = m_p ? m_p + b * H : ones.data();
          const T* zh_r = zh_p ? zh_p + row * H : zeros.data();
          if (kind == 2 && pass == 1) {  // the reset gate, once d(r hd) is known
            T* drh_r = drh_p + b * H;
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T r = a_r[j], dar = drh_r[j] * hd_r[j] * m_r[j] * r * (T(1) - r);
              drh_r[j] *= r;  // d(hd) through r hd, added to the products' d(hd) below
              da_r[j] = dar;
              du_r[j] = dar;
            }
            continue;
          }
          // dh_r becomes the part of d(h_{t-1}) that skips the cell (zoneout); dh1 = d h'
          if (lstm) {
            T* dc_r = dc.data_ptr<T>() + b * H;
            const T* cp_r = c_prev.data_ptr<T>() + row * H;
            const T* zc_r = zc_p ? zc_p + row * H : zeros.data();
            // tanh(N_c(c')) again, from what N_c saved (or c' itself): cheaper than storing it
            const T* c_in = lnc ? chat.data_ptr<T>() + row * H : c_new.data_ptr<T>() + row * H;
            T* dcn_r = lnc ? dcn.data_ptr<T>() + b * H : carry_r;  // carry is free in the LSTM
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T dh_new = dh_r[j] + go_r[j], o = a_r[3 * H + j], dh1 = (T(1) - zh_r[j]) * dh_new;
              const T tc = std::tanh(c_in[j] * lncw[j] + lncb[j]);
              dh_r[j] = zh_r[j] * dh_new;
              da_r[3 * H + j] = dh1 * tc * o * (T(1) - o);
              dcn_r[j] = dh1 * o * (T(1) - tc * tc);
            }
            const T* dc1 = dcn_r;
            if (lnc) {  // d c' through N_c, in carry; N_c's parameters' gradients
              const T* ch_r = chat.data_ptr<T>() + row * H;
              T* s = sums.data_ptr<T>() + b * SW + 4 * G;
#pragma omp simd
              for (int64_t j = 0; j < H; ++j) {
                s[j] += dcn_r[j] * ch_r[j];
                s[H + j] += dcn_r[j];
                carry_r[j] = dcn_r[j];
              }
              normalize_backward(carry_r, ch_r, lncw, rstd_c.data_ptr<T>()[row], H);
              dc1 = carry_r;
            }
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T i = a_r[j], f = a_r[H + j], g = a_r[2 * H + j], c_old = cp_r[j], dc_new = dc_r[j];
              const T d = dc1[j] + (T(1) - zc_r[j]) * dc_new + da_r[3 * H + j] * p_o[j];
              const T di = d * g * i * (T(1) - i), df = d * c_old * f * (T(1) - f);
              da_r[j] = di;
              da_r[H + j] = df;
              da_r[2 * H + j] = d * i * (T(1) - g * g);
              dc_r[j] = d * f + zc_r[j] * dc_new + di * p_i[j] + df * p_f[j];
            }
            std::fill(carry_r, carry_r + H, T(0));  // the LSTM's h' has no carry term
          } else if (kind == 1) {
            T* un_r = carry_r;  // u_n, made again from N's saved values; carry is rewritten below
            if (ln) {
              const T *uh = uhat.data_ptr<T>() + row * G + 2 * H, *gain = lnw + 2 * H, *bias = b_p + 2 * H;
#pragma omp simd
              for (int64_t j = 0; j < H; ++j) un_r[j] = uh[j] * gain[j] + bias[j];
            } else {
              un_r = u_n.data_ptr<T>() + row * H;
            }
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T dh_new = dh_r[j] + go_r[j], r = a_r[j], z = a_r[H + j], n = a_r[2 * H + j];
              const T dh1 = (T(1) - zh_r[j]) * dh_new;
              dh_r[j] = zh_r[j] * dh_new;
              const T dz = dh1 * (hd_r[j] - n) * z * (T(1) - z), dan = dh1 * (T(1) - z) * (T(1) - n * n);
              const T dar = dan * un_r[j] * r * (T(1) - r);
              carry_r[j] = dh1 * z;
              da_r[j] = dar;
              da_r[H + j] = dz;
              da_r[2 * H + j] = dan;
              du_r[j] = dar;
              du_r[H + j] = dz;
              du_r[2 * H + j] = dan * r;
            }
          } else {
#pragma omp simd
            for (int64_t j = 0; j < H; ++j) {
              const T dh_new = dh_r[j] + go_r[j], z = a_r[H + j], n = a_r[2 * H + j];
              const T dh1 = (T(1) - zh_r[j]) * dh_new;
              dh_r[j] = zh_r[j] * dh_new;
              const T dz = dh1 * (hd_r[j] - n) * z * (T(1) - z), dan = dh1 * (T(1) - z) * (T(1) - n * n);
              carry_r[j] = dh1 * z;
              da_r[H + j] = dz;
              da_r[2 * H + j] = dan;
              du_r[H + j] = dz;
              dn_r[j] = dan;
            }
          }
          if (ln) {  // through N_i (da = d N_i's output) and N (du = d N's output; the LSTM's is da)
            if (lstm) std::copy(da_r, da_r + G, du_r);
            const T *uh_r = uhat.data_ptr<T>() + row * G, *xg_r = xg_p + (b * Tn + t) * G;
            T *dx_r = dx.data_ptr<T>() + (b * Tn + t) * G, *s = sums.data_ptr<T>() + b * SW;
            standardize(xg_r, mean_i_p[row], rstd_i_p[row], xhat.data(), G);
#pragma omp simd
            for (int64_t k = 0; k < G; ++k) {
              s[k] += da_r[k];
              s[G + k] += da_r[k] * xhat[k];
              s[2 * G + k] += du_r[k];
              s[3 * G + k] += du_r[k] * uh_r[k];
              dx_r[k] = da_r[k];
            }
            normalize_backward(dx_r, xhat.data(), gain_i, rstd_i_p[row], G);
            normalize_backward(du_r, uh_r, lnw, rstd.data_ptr<T>()[row], G);
          }
        }
      };
      rows(0);
      if (kind == 2) {
        (*product_n)(du_n.data_ptr<T>() + (tb + b0) * H, H, b1 - b0, drh_p + b0 * H);
        rows(1);
      }
      product(du_t, GU, b1 - b0, dhd_p + b0 * H);
      if (ln) {
        const auto [hd_t, ld] = hd_row(t, b0);
        for (int64_t b = 0; b < b1 - b0; ++b) {  // what the product read: a GRU's h masked here
          T* ring_r = ring_hd + (slot * R + b) * H;
          if (!lstm && m_p) {
            for (int64_t j = 0; j < H; ++j) ring_r[j] = hd_t[b * ld + j] * m_p[(b0 + b) * H + j];
          } else {
            std::copy_n(hd_t + b * ld, H, ring_r);
          }
        }
        if (slot == 0)  // the ring holds steps t .. t + filled - 1
          add_outer<T>(blocks.blas, dw_block, G, H, ring_du, ring_hd, H, std::min(kSteps, Tn - t) * R,
                       T(t + kSteps < Tn));  // the first product writes dW
      }
      const int64_t k0 = b0 * H, k1 = b1 * H;
      if (kind == 2) {
#pragma omp simd
        for (int64_t k = k0; k < k1; ++k) dhd_p[k] += drh_p[k];
      }
      if (m_p) {  // the products read h m, the carry h itself
#pragma omp simd
        for (int64_t k = k0; k < k1; ++k) dh_p[k] += carry_p[k] + dhd_p[k] * m_p[k];
      } else {
#pragma omp simd
        for (int64_t k = k0; k < k1; ++k) dh_p[k] += carry_p[k] + dhd_p[k];
      }
    }
  });
  auto none = [&] { return at::empty({0}, opt); };  // a custom op's outputs may not alias
  if (ln) {  // the rows' sums, added in row order (the same on any number of threads; dW_hh's
             // rounding depends on the blocks)
    for (int64_t k = 0; k + 1 < blocks.n; ++k) dw.add_(dw_more[k]);
    const Tensor total = column_sum<T>(sums);
    auto part = [&](int64_t at, int64_t n) { return n ? total.narrow(0, at, n).clone() : none(); };
    const int64_t nc = lnc ? H : 0;
    return {dx, dh, lstm ? dc : none(),  dw, part(2 * G, G), part(3 * G, G), part(4 * G, nc),
            part(4 * G + nc, nc), none(), part(G, G), part(0, G)};
  }
  // parameter gradients, summed over all steps at once
  auto flat = [&](const Tensor& x) { return x.reshape({Tn * B, x.size(2)}); };
  // what the product read: a GRU's saved h masked here
  Tensor dw_all = at::mm(flat(du).t(), flat(!lstm && m_p ? hd * *mask : hd)), db;
  if (lstm) {  // b_hh acts where the gates' pre-activation is formed
    db = column_sum<T>(flat(da));
  } else if (kind == 1) {
    db = column_sum<T>(flat(du));
  } else {
    dw_all = at::cat({dw_all, at::mm(flat(du_n).t(), flat(rh))}, 0);
    db = at::cat({column_sum<T>(flat(du)), column_sum<T>(flat(du_n))});
  }
  Tensor dpeep = none();
  if (pp) {
    const Tensor da2 = flat(da);
    dpeep = at::stack({column_sum<T>(da2.narrow(1, 0, H), flat(c_prev)), column_sum<T>(da2.narrow(1, H, H), flat(c_prev)),
                       column_sum<T>(da2.narrow(1, 3 * H, H), flat(c_new))});
  }
  return {da, dh, lstm ? dc : none(), dw_all, db, none(), none(), none(), dpeep, none(), none()};
}

}  // namespace

namespace {

void check_shape(const OptTensor& t, at::IntArrayRef shape, const char* name) {
  TORCH_CHECK(!given(t) || t->sizes() == shape, "rnn_loop: ", name, " must be ", shape, ", got ", t->sizes());
}

// The options of both ops, each against the kind and the sizes: the kernels trust them.
void check_options(int64_t kind, const Dims& d, const OptTensor& c0, const OptTensor& ln_w, const OptTensor& lnc_w,
                   const OptTensor& lnc_b, const OptTensor& peep, const OptTensor& mask, const OptTensor& zh,
                   const OptTensor& zc, const OptTensor& lni_w) {
  TORCH_CHECK(kind >= 0 && kind <= 2, "rnn_loop: kind must be 0, 1 or 2, got ", kind);
  TORCH_CHECK(d.B >= 1 && d.T >= 1, "rnn_loop: needs at least one row and one step, got B = ", d.B, ", T = ", d.T);
  TORCH_CHECK((kind == 0) == given(c0), "rnn_loop: the cell state is given exactly for the LSTM");
  check_shape(c0, {d.B, d.H}, "c0");
  TORCH_CHECK(!given(ln_w) || kind < 2, "rnn_loop: kind 2 has no layer norm");
  TORCH_CHECK(given(ln_w) == given(lni_w), "rnn_loop: the layer norms of both products come together");
  check_shape(ln_w, {d.G}, "ln_w");
  check_shape(lni_w, {d.G}, "lni_w");
  TORCH_CHECK(!given(lnc_w) || (kind == 0 && given(ln_w)), "rnn_loop: N_c needs the LSTM with N");
  TORCH_CHECK(given(lnc_w) == given(lnc_b), "rnn_loop: lnc_w and lnc_b come together");
  check_shape(lnc_w, {d.H}, "lnc_w");
  check_shape(lnc_b, {d.H}, "lnc_b");
  TORCH_CHECK(!given(peep) || (kind == 0 && !given(ln_w)), "rnn_loop: peepholes need the LSTM without N");
  check_shape(peep, {3, d.H}, "peep");
  check_shape(mask, {d.B, d.H}, "mask");
  check_shape(zh, {d.T, d.B, d.H}, "keep_h");
  TORCH_CHECK(!given(zc) || kind == 0, "rnn_loop: zoneout on c needs the LSTM");
  check_shape(zc, {d.T, d.B, d.H}, "keep_c");
}

// What the forward returns after (out, h, c), in order: see forward_impl
std::vector<std::vector<int64_t>> saved_shapes(int64_t kind, const Dims& d, bool ln, bool lnc, bool masked) {
  const int64_t T = d.T, B = d.B, H = d.H, G = d.G;
  std::vector<std::vector<int64_t>> shapes;
  shapes.push_back(masked || !ln ? std::vector<int64_t>{T, B, H} : std::vector<int64_t>{0});
  shapes.push_back({T, B, G});
  const int64_t extra = kind == 0 ? 2 : kind == 1 && ln ? 0 : 1;
  for (int64_t i = 0; i < extra; ++i) shapes.push_back({T, B, H});
  if (ln) shapes.insert(shapes.end(), {{T, B, G}, {T, B}});
  if (lnc) shapes.insert(shapes.end(), {{T, B, H}, {T, B}});
  if (ln) shapes.insert(shapes.end(), {{T, B}, {T, B}});  // N_i's, which comes with N
  return shapes;
}

}  // namespace

std::vector<Tensor> rnn_loop_forward(int64_t kind, const Tensor& xg, const Tensor& h0, const OptTensor& c0,
                                     const Tensor& w_hh, const Tensor& b_hh, const OptTensor& ln_w,
                                     const OptTensor& lnc_w, const OptTensor& lnc_b, const OptTensor& peep,
                                     const OptTensor& mask, const OptTensor& zh, const OptTensor& zc,
                                     const OptTensor& lni_w, const OptTensor& b_ih, const Tensor& lengths,
                                     double eps) {
  const Dims d = dims_of(kind, xg, h0);
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == d.G && w_hh.size(1) == d.H, "rnn_loop: w_hh must be (",
              d.G, ", ", d.H, ")");
  TORCH_CHECK(b_hh.numel() == d.G, "rnn_loop: b_hh must have ", d.G, " values");
  check_options(kind, d, c0, ln_w, lnc_w, lnc_b, peep, mask, zh, zc, lni_w);
  TORCH_CHECK(!given(b_ih) || given(lni_w), "rnn_loop: b_ih is added here only with lni_w");
  check_shape(b_ih, {d.G}, "b_ih");
  std::vector<Tensor> dense{xg, h0, w_hh, b_hh};
  for (const auto& t : present({c0, ln_w, lnc_w, lnc_b, peep, mask, zh, zc, lni_w, b_ih})) dense.push_back(t);
  check_inputs(d, dense, lengths);
  return AT_DISPATCH_FLOATING_TYPES(xg.scalar_type(), "rnn_loop_forward", [&] {
    return forward_impl<scalar_t>(kind, xg, h0, c0, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep, mask, zh, zc, lni_w, b_ih,
                                  lengths, eps);
  });
}

std::vector<Tensor> rnn_loop_backward(int64_t kind, const Tensor& grad_out, const Tensor& grad_h,
                                      const OptTensor& grad_c, const Tensor& out, const Tensor& h0,
                                      const Tensor& w_hh, const Tensor& b_hh, const OptTensor& ln_w,
                                      const OptTensor& lnc_w, const OptTensor& lnc_b, const OptTensor& peep,
                                      const OptTensor& mask, const OptTensor& zh, const OptTensor& zc,
                                      const OptTensor& lni_w, const OptTensor& xg, const Tensor& lengths,
                                      const std::vector<Tensor>& saved) {
  TORCH_CHECK(grad_out.dim() == 3 && w_hh.dim() == 2, "rnn_loop_backward: grad_out must be (B, T, H)");
  const Dims d{grad_out.size(1), grad_out.size(0), grad_out.size(2), w_hh.size(0)};
  TORCH_CHECK(d.G == (kind == 0 ? 4 : 3) * d.H && w_hh.size(1) == d.H && b_hh.numel() == d.G &&
                  grad_h.sizes() == h0.sizes() && h0.dim() == 2 && h0.size(0) == d.B && h0.size(1) == d.H,
              "rnn_loop_backward: w_hh, b_hh, grad_h or h0 has the wrong shape");
  check_options(kind, d, grad_c, ln_w, lnc_w, lnc_b, peep, mask, zh, zc, lni_w);
  const auto shapes = saved_shapes(kind, d, given(ln_w), given(lnc_w), given(mask));
  TORCH_CHECK(saved.size() == shapes.size(), "rnn_loop_backward: ", shapes.size(), " saved tensors expected, got ",
              saved.size());
  for (size_t i = 0; i < shapes.size(); ++i)
    TORCH_CHECK(saved[i].sizes() == at::IntArrayRef(shapes[i]), "rnn_loop_backward: saved tensor ", i, " must be ",
                at::IntArrayRef(shapes[i]), ", got ", saved[i].sizes());
  // out is read (as h_{t-1}) only where the forward did not store h_{t-1}
  TORCH_CHECK(saved[0].numel() || out.sizes() == grad_out.sizes(), "rnn_loop_backward: out must be ",
              grad_out.sizes(), ", got ", out.sizes());
  // xg is read (N_i's input, normalised again) with N only
  TORCH_CHECK(given(xg) == given(ln_w), "rnn_loop_backward: xg is given exactly with ln_w");
  check_shape(xg, {d.B, d.T, d.G}, "xg");
  std::vector<Tensor> dense{grad_out, grad_h, h0, w_hh, b_hh};
  if (!saved[0].numel()) dense.push_back(out);
  if (given(xg)) dense.push_back(*xg);
  for (const auto& t : present({grad_c, ln_w, lnc_w, lnc_b, peep, mask, zh, zc, lni_w})) dense.push_back(t);
  for (const auto& t : saved)
    if (t.numel()) dense.push_back(t);
  check_inputs(d, dense, lengths);
  return AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "rnn_loop_backward", [&] {
    return backward_impl<scalar_t>(kind, grad_out, grad_h, grad_c, out, h0, w_hh, b_hh, ln_w, lnc_w, lnc_b, peep, mask,
                                   zh, zc, lni_w, xg, lengths, saved);
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rnn_loop_forward", &rnn_loop_forward, "LSTM/GRU variant time loop, forward (CPU)");
  m.def("rnn_loop_backward", &rnn_loop_backward, "LSTM/GRU variant time loop, backward (CPU)");
}
