// oneDNN's fused RNN primitives (vanilla RNN, LSTM, linear-before-reset GRU) as XLA FFI
// handlers, for scanrnn's JAX backend on the CPU.  Compiled at first use by
// scanrnn/kernels/build.py against the onednn-cpu-gomp wheel (oneDNN 3.2) and jaxlib's FFI
// headers; see scanrnn/kernels/__init__.py.
//
// Layouts (all float32, row-major, what scanrnn stores):
//   src (T, B, I) = oneDNN tnc          weights_layer (I, G*H) = ldigo with L = D = 1
//   h0, c0, hT, cT (B, H) = ldnc        weights_iter  (H, G*H) = ldigo
//   hs (T, B, H) = tnc                  bias (Gb*H,) = ldgo  (Gb = 4 for the lbr GRU, else G)
// Weights are given with format_tag::any to the primitive, which picks its own layout; the
// handlers reorder to and from it on every call.
//
// forward  args: src, wl, wi, bias, h0, [c0]           rets: hs, hT, [cT], [workspace u8]
// backward args: src, wl, wi, bias, h0, [c0], hs, hT, [cT], workspace, dhs, dhT, [dcT]
//          rets: dsrc, dwl, dwi, dbias, dh0, [dc0]
// ([c0], [cT], [dcT], [dc0] for the LSTM only; the workspace when training = 1.)

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using tag = dnnl::memory::format_tag;

namespace {

enum Kind : int64_t { kRnn = 0, kLstm = 1, kGru = 2 };

struct Shape {
  int64_t kind, act, T, B, I, H;
  bool operator<(const Shape& o) const {
    return std::tie(kind, act, T, B, I, H) < std::tie(o.kind, o.act, o.T, o.B, o.I, o.H);
  }
  int64_t gates() const { return kind == kLstm ? 4 : (kind == kGru ? 3 : 1); }
  int64_t bias_gates() const { return kind == kGru ? 4 : gates(); }
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::desc md(const memory::dims& dims, tag t) {
  return memory::desc(dims, memory::data_type::f32, t);
}

// The memory descriptors of one shape; `any` for the weights the primitive lays out itself.
struct Descs {
  memory::desc src, iter, wl_any, wi_any, wl_user, wi_user, bias, dst;
  explicit Descs(const Shape& s)
      : src(md({s.T, s.B, s.I}, tag::tnc)),
        iter(md({1, 1, s.B, s.H}, tag::ldnc)),
        wl_any(md({1, 1, s.I, s.gates(), s.H}, tag::any)),
        wi_any(md({1, 1, s.H, s.gates(), s.H}, tag::any)),
        wl_user(md({1, 1, s.I, s.gates(), s.H}, tag::ldigo)),
        wi_user(md({1, 1, s.H, s.gates(), s.H}, tag::ldigo)),
        bias(md({1, 1, s.bias_gates(), s.H}, tag::ldgo)),
        dst(md({s.T, s.B, s.H}, tag::tnc)) {}
};

dnnl::algorithm activation(int64_t act) {
  return act == 1 ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// Primitives of one shape, built once and reused by every call (primitives are thread-safe;
// each call brings its own scratchpad and reordered weights).
struct Entry {
  Shape shape;
  Descs d;
  bool training;
  dnnl::primitive_desc fwd_pd;
  dnnl::primitive fwd;
  dnnl::primitive_desc bwd_pd;
  dnnl::primitive bwd;

  Entry(const Shape& s, bool train) : shape(s), d(s), training(train) {
    auto prop = train ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
    auto dir = dnnl::rnn_direction::unidirectional_left2right;
    auto& e = cpu_engine();
    auto attr = user_scratchpad();
    if (s.kind == kLstm) {
      auto pd = dnnl::lstm_forward::primitive_desc(e, prop, dir, d.src, d.iter, d.iter,
                                                   d.wl_any, d.wi_any, d.bias, d.dst,
                                                   d.iter, d.iter, attr);
      fwd_pd = pd;
      fwd = dnnl::lstm_forward(pd);
      if (train) {
        auto bpd = dnnl::lstm_backward::primitive_desc(
            e, dnnl::prop_kind::backward, dir, d.src, d.iter, d.iter, d.wl_any, d.wi_any,
            d.bias, d.dst, d.iter, d.iter, d.src, d.iter, d.iter, d.wl_any, d.wi_any, d.bias,
            d.dst, d.iter, d.iter, pd, attr);
        bwd_pd = bpd;
        bwd = dnnl::lstm_backward(bpd);
      }
    } else if (s.kind == kGru) {
      auto pd = dnnl::lbr_gru_forward::primitive_desc(e, prop, dir, d.src, d.iter, d.wl_any,
                                                      d.wi_any, d.bias, d.dst, d.iter, attr);
      fwd_pd = pd;
      fwd = dnnl::lbr_gru_forward(pd);
      if (train) {
        auto bpd = dnnl::lbr_gru_backward::primitive_desc(
            e, dnnl::prop_kind::backward, dir, d.src, d.iter, d.wl_any, d.wi_any, d.bias,
            d.dst, d.iter, d.src, d.iter, d.wl_any, d.wi_any, d.bias, d.dst, d.iter, pd, attr);
        bwd_pd = bpd;
        bwd = dnnl::lbr_gru_backward(bpd);
      }
    } else {
      auto act = activation(s.act);
      auto pd = dnnl::vanilla_rnn_forward::primitive_desc(e, prop, act, dir, d.src, d.iter,
                                                          d.wl_any, d.wi_any, d.bias, d.dst,
                                                          d.iter, attr);
      fwd_pd = pd;
      fwd = dnnl::vanilla_rnn_forward(pd);
      if (train) {
        auto bpd = dnnl::vanilla_rnn_backward::primitive_desc(
            e, dnnl::prop_kind::backward, act, dir, d.src, d.iter, d.wl_any, d.wi_any, d.bias,
            d.dst, d.iter, d.src, d.iter, d.wl_any, d.wi_any, d.bias, d.dst, d.iter, pd, attr);
        bwd_pd = bpd;
        bwd = dnnl::vanilla_rnn_backward(bpd);
      }
    }
  }
};

std::shared_ptr<Entry> entry_for(const Shape& s, bool training) {
  static std::mutex lock;
  static std::map<std::pair<Shape, bool>, std::shared_ptr<Entry>> cache;
  std::lock_guard<std::mutex> guard(lock);
  auto key = std::make_pair(s, training);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto made = std::make_shared<Entry>(s, training);
  cache.emplace(key, made);
  return made;
}

// Per-thread buffers for reordered weights, diff weights and the scratchpad: a call runs on
// one XLA thread from start to end, so a thread's buffers are free again when it returns.
// Reusing them avoids fresh pages (page faults) on every call.
constexpr int kSlots = 5;  // weights layer, weights iter, diff layer, diff iter, scratchpad

void* thread_buffer(int slot, size_t bytes) {
  thread_local std::vector<uint8_t> buffers[kSlots];
  auto& b = buffers[slot];
  if (b.size() < bytes + 64) b.resize(bytes + 64);
  return b.data() + (64 - reinterpret_cast<uintptr_t>(b.data()) % 64) % 64;
}

struct Owned {
  memory mem;
  Owned(int slot, const memory::desc& desc, bool zero) {
    size_t n = desc.get_size();
    void* data = thread_buffer(slot, n);
    if (zero) std::memset(data, 0, n);
    mem = memory(desc, cpu_engine(), data);
  }
};

memory wrap(const memory::desc& desc, void* data) { return memory(desc, cpu_engine(), data); }

void reorder(dnnl::stream& stream, memory& from, memory& to) {
  dnnl::reorder(from, to).execute(stream, from, to);
}

void* arg(const ffi::RemainingArgs& args, size_t i) {
  auto buffer = args.get<ffi::AnyBuffer>(i);
  if (!buffer.has_value()) throw std::runtime_error("scanrnn oneDNN kernel: missing argument");
  return buffer->untyped_data();
}

void* ret(const ffi::RemainingRets& rets, size_t i) {
  auto buffer = rets.get<ffi::AnyBuffer>(i);
  if (!buffer.has_value()) throw std::runtime_error("scanrnn oneDNN kernel: missing result");
  return (*buffer)->untyped_data();
}

Shape shape_of(const ffi::RemainingArgs& args, int64_t kind, int64_t act) {
  auto src = args.get<ffi::AnyBuffer>(0);
  auto h0 = args.get<ffi::AnyBuffer>(4);
  if (!src.has_value() || !h0.has_value())
    throw std::runtime_error("scanrnn oneDNN kernel: missing argument");
  auto sd = src->dimensions();
  auto hd = h0->dimensions();
  if (sd.size() != 3 || hd.size() != 2)
    throw std::runtime_error("scanrnn oneDNN kernel: src must be (T, B, I), h0 (B, H)");
  return Shape{kind, act, sd[0], sd[1], sd[2], hd[1]};
}

ffi::Error ForwardImpl(ffi::RemainingArgs args, ffi::RemainingRets rets, int64_t kind,
                       int64_t act, int64_t training) {
  try {
    Shape s = shape_of(args, kind, act);
    auto e = entry_for(s, training != 0);
    const Descs& d = e->d;
    dnnl::stream stream(cpu_engine());
    bool lstm = kind == kLstm;
    memory wl_user = wrap(d.wl_user, arg(args, 1)), wi_user = wrap(d.wi_user, arg(args, 2));
    Owned wl(0, e->fwd_pd.weights_desc(0), false), wi(1, e->fwd_pd.weights_desc(1), false);
    reorder(stream, wl_user, wl.mem);
    reorder(stream, wi_user, wi.mem);
    Owned scratch(4, e->fwd_pd.scratchpad_desc(), false);
    std::unordered_map<int, memory> m = {
        {DNNL_ARG_SRC_LAYER, wrap(d.src, arg(args, 0))},
        {DNNL_ARG_WEIGHTS_LAYER, wl.mem},
        {DNNL_ARG_WEIGHTS_ITER, wi.mem},
        {DNNL_ARG_BIAS, wrap(d.bias, arg(args, 3))},
        {DNNL_ARG_SRC_ITER, wrap(d.iter, arg(args, 4))},
        {DNNL_ARG_DST_LAYER, wrap(d.dst, ret(rets, 0))},
        {DNNL_ARG_DST_ITER, wrap(d.iter, ret(rets, 1))},
        {DNNL_ARG_SCRATCHPAD, scratch.mem},
    };
    size_t next = 2;
    if (lstm) {
      m[DNNL_ARG_SRC_ITER_C] = wrap(d.iter, arg(args, 5));
      m[DNNL_ARG_DST_ITER_C] = wrap(d.iter, ret(rets, next++));
    }
    if (training) m[DNNL_ARG_WORKSPACE] = wrap(e->fwd_pd.workspace_desc(), ret(rets, next));
    e->fwd.execute(stream, m);
    stream.wait();
  } catch (const std::exception& ex) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("scanrnn oneDNN forward: ") + ex.what());
  }
  return ffi::Error::Success();
}

ffi::Error BackwardImpl(ffi::RemainingArgs args, ffi::RemainingRets rets, int64_t kind,
                        int64_t act) {
  try {
    Shape s = shape_of(args, kind, act);
    auto e = entry_for(s, true);
    const Descs& d = e->d;
    auto& pd = e->bwd_pd;
    dnnl::stream stream(cpu_engine());
    bool lstm = kind == kLstm;
    // argument positions: src wl wi bias h0 [c0] hs hT [cT] ws dhs dhT [dcT]
    size_t a = lstm ? 6 : 5;
    size_t i_hs = a, i_hT = a + 1, i_cT = a + 2, i_ws = lstm ? a + 3 : a + 2;
    size_t i_dhs = i_ws + 1, i_dhT = i_ws + 2, i_dcT = i_ws + 3;
    memory wl_user = wrap(d.wl_user, arg(args, 1)), wi_user = wrap(d.wi_user, arg(args, 2));
    Owned wl(0, pd.weights_desc(0), false), wi(1, pd.weights_desc(1), false);
    reorder(stream, wl_user, wl.mem);
    reorder(stream, wi_user, wi.mem);
    // diff weights are accumulated by the primitive: start from zeros
    Owned dwl(2, pd.diff_weights_desc(0), true), dwi(3, pd.diff_weights_desc(1), true);
    memory dbias = wrap(d.bias, ret(rets, 3));
    std::memset(dbias.get_data_handle(), 0, d.bias.get_size());
    Owned scratch(4, pd.scratchpad_desc(), false);
    std::unordered_map<int, memory> m = {
        {DNNL_ARG_SRC_LAYER, wrap(d.src, arg(args, 0))},
        {DNNL_ARG_WEIGHTS_LAYER, wl.mem},
        {DNNL_ARG_WEIGHTS_ITER, wi.mem},
        {DNNL_ARG_BIAS, wrap(d.bias, arg(args, 3))},
        {DNNL_ARG_SRC_ITER, wrap(d.iter, arg(args, 4))},
        {DNNL_ARG_DST_LAYER, wrap(d.dst, arg(args, i_hs))},
        {DNNL_ARG_DST_ITER, wrap(d.iter, arg(args, i_hT))},
        {DNNL_ARG_WORKSPACE, wrap(e->fwd_pd.workspace_desc(), arg(args, i_ws))},
        {DNNL_ARG_DIFF_DST_LAYER, wrap(d.dst, arg(args, i_dhs))},
        {DNNL_ARG_DIFF_DST_ITER, wrap(d.iter, arg(args, i_dhT))},
        {DNNL_ARG_DIFF_SRC_LAYER, wrap(d.src, ret(rets, 0))},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, dwl.mem},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, dwi.mem},
        {DNNL_ARG_DIFF_BIAS, dbias},
        {DNNL_ARG_DIFF_SRC_ITER, wrap(d.iter, ret(rets, 4))},
        {DNNL_ARG_SCRATCHPAD, scratch.mem},
    };
    if (lstm) {
      m[DNNL_ARG_SRC_ITER_C] = wrap(d.iter, arg(args, 5));
      m[DNNL_ARG_DST_ITER_C] = wrap(d.iter, arg(args, i_cT));
      m[DNNL_ARG_DIFF_DST_ITER_C] = wrap(d.iter, arg(args, i_dcT));
      m[DNNL_ARG_DIFF_SRC_ITER_C] = wrap(d.iter, ret(rets, 5));
    }
    e->bwd.execute(stream, m);
    memory dwl_user = wrap(d.wl_user, ret(rets, 1)), dwi_user = wrap(d.wi_user, ret(rets, 2));
    reorder(stream, dwl.mem, dwl_user);
    reorder(stream, dwi.mem, dwi_user);
    stream.wait();
  } catch (const std::exception& ex) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("scanrnn oneDNN backward: ") + ex.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ScanrnnRnnForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("act")
                                  .Attr<int64_t>("training"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(ScanrnnRnnBackward, BackwardImpl,
                              ffi::Ffi::Bind()
                                  .RemainingArgs()
                                  .RemainingRets()
                                  .Attr<int64_t>("kind")
                                  .Attr<int64_t>("act"));

// Plain C entry points for Python's ctypes: the workspace size of a shape, and a self-check.
extern "C" {

int64_t scanrnn_workspace_bytes(int64_t kind, int64_t act, int64_t T, int64_t B, int64_t I,
                                int64_t H) {
  try {
    auto e = entry_for(Shape{kind, act, T, B, I, H}, true);
    return static_cast<int64_t>(e->fwd_pd.workspace_desc().get_size());
  } catch (const std::exception&) {
    return -1;
  }
}

int64_t scanrnn_onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return v->major * 10000 + v->minor * 100 + v->patch;
}

}  // extern "C"
