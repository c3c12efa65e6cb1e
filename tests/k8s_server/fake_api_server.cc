#include "tests/k8s_server/fake_api_server.h"

#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <absl/strings/escaping.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "k8s-client/json_codec_internal.h"

namespace carina::test {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = boost::asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;
constexpr auto kTuple = net::as_tuple(net::use_awaitable);

absl::string_view sv(std::string_view s) { return {s.data(), s.size()}; }

// ---------------------------------------------------------------- certificates (OpenSSL 3)

struct PkeyDel {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Del {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDel>;
using X509Ptr = std::unique_ptr<X509, X509Del>;

PkeyPtr newKey() { return PkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

void addExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext != nullptr) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

X509Ptr makeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                 bool is_ca, const char* san, bool client) {
  static std::atomic<long> serial{1};
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  if (is_ca) {
    addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    addExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    addExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    addExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    addExt(cert.get(), iss, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
    if (san != nullptr) {
      addExt(cert.get(), iss, NID_subject_alt_name, san);
    }
  }
  X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256());
  return cert;
}

std::string certPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string keyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string nowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---------------------------------------------------------------- JSON helpers

const json::value* at(const json::value& v, std::string_view dotted) {
  const json::value* cur = &v;
  for (absl::string_view part : absl::StrSplit(sv(dotted), '.')) {
    const json::object* o = cur->if_object();
    if (o == nullptr) {
      return nullptr;
    }
    cur = o->if_contains(json::string_view(part.data(), part.size()));
    if (cur == nullptr) {
      return nullptr;
    }
  }
  return cur;
}

std::string strAt(const json::value& v, std::string_view dotted) {
  const json::value* x = at(v, dotted);
  if (x == nullptr) {
    return {};
  }
  if (x->is_string()) {
    return std::string(x->get_string());
  }
  if (x->is_bool()) {
    return x->get_bool() ? "true" : "false";
  }
  if (x->is_number()) {
    return json::serialize(*x);
  }
  return {};
}

json::object& meta(json::value& v) {
  json::value& m = v.as_object()["metadata"];
  if (!m.is_object()) {
    m = json::object();
  }
  return m.as_object();
}

std::string statusBody(unsigned code, std::string_view reason, const std::string& message,
                       const std::string& name = {}, std::string_view plural = {}) {
  json::object st{{"kind", "Status"},
                  {"apiVersion", "v1"},
                  {"metadata", json::object()},
                  {"status", "Failure"},
                  {"message", message},
                  {"reason", json::string_view(reason.data(), reason.size())},
                  {"code", code}};
  if (!name.empty() || !plural.empty()) {
    st["details"] =
        json::object{{"name", name}, {"kind", json::string_view(plural.data(), plural.size())}};
  }
  return json::serialize(st);
}

/** Equality-based label selectors (k=v, k==v, k!=v, k, !k). */
bool labelsMatch(const json::value& obj, const std::string& selector) {
  if (selector.empty()) {
    return true;
  }
  const json::value* labels = at(obj, "metadata.labels");
  auto label = [&](const std::string& k) -> std::optional<std::string> {
    if (labels == nullptr || !labels->is_object()) {
      return std::nullopt;
    }
    const json::value* v = labels->get_object().if_contains(k);
    if (v == nullptr || !v->is_string()) {
      return std::nullopt;
    }
    return std::string(v->get_string());
  };
  for (absl::string_view term : absl::StrSplit(selector, ',', absl::SkipEmpty())) {
    std::string t(term);
    if (auto p = t.find("!="); p != std::string::npos) {
      auto v = label(t.substr(0, p));
      if (v && *v == t.substr(p + 2)) {
        return false;
      }
    } else if (auto q = t.find('='); q != std::string::npos) {
      std::size_t vstart = (q + 1 < t.size() && t[q + 1] == '=') ? q + 2 : q + 1;
      auto v = label(t.substr(0, q));
      if (!v || *v != t.substr(vstart)) {
        return false;
      }
    } else if (!t.empty() && t[0] == '!') {
      if (label(t.substr(1))) {
        return false;
      }
    } else if (!label(t)) {
      return false;
    }
  }
  return true;
}

/** Field selectors: dotted.path=value / != value. */
bool fieldsMatch(const json::value& obj, const std::string& selector) {
  for (absl::string_view term : absl::StrSplit(selector, ',', absl::SkipEmpty())) {
    std::string t(term);
    bool negate = false;
    std::size_t p = t.find("!=");
    std::string value;
    std::string path;
    if (p != std::string::npos) {
      negate = true;
      path = t.substr(0, p);
      value = t.substr(p + 2);
    } else if ((p = t.find('=')) != std::string::npos) {
      std::size_t vstart = (p + 1 < t.size() && t[p + 1] == '=') ? p + 2 : p + 1;
      path = t.substr(0, p);
      value = t.substr(vstart);
    } else {
      continue;
    }
    bool eq = strAt(obj, path) == value;
    if (eq == negate) {
      return false;
    }
  }
  return true;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && i + 2 <= s.size() - 1) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') {
          return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
          return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
          return c - 'A' + 10;
        }
        return -1;
      };
      int h = hex(s[i + 1]);
      int l = hex(s[i + 2]);
      if (h >= 0 && l >= 0) {
        out.push_back(static_cast<char>(h * 16 + l));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

struct Resource {
  k8s::ResourceKind kind;
  std::map<std::string, json::value> objects;  // "ns/name" or "name"
};

struct HistoryEvent {
  int64_t rv = 0;
  std::string plural;
  std::string type;
  json::value object;
};

struct Watcher {
  std::string plural;
  std::string ns;
  std::string label_selector;
  std::string field_selector;
  bool bookmarks = false;
  std::deque<std::string> queue;  // JSON lines
  net::steady_timer* wake = nullptr;
  bool closed = false;
};

std::string eventLine(std::string_view type, const json::value& object) {
  json::object ev{{"type", json::string_view(type.data(), type.size())}, {"object", object}};
  return json::serialize(ev) + "\n";
}

struct Session {
  std::shared_ptr<Stream> stream;
  std::shared_ptr<Watcher> watcher;
};

struct HttpResponse {
  unsigned status = 200;
  std::string body;
};

}  // namespace

class FakeApiServer::Impl {
public:
  explicit Impl(FakeApiServerOptions options)
      : options_(std::move(options)),
        token_(options_.token),
        ssl_(ssl::context::tls_server),
        acceptor_(ioc_) {
    ca_key_ = newKey();
    // A unique CA name per server: two servers' CAs must not be confused by name lookup.
    ca_cert_ = makeCert(ca_key_.get(), "carina-test-ca-" + std::to_string(rng_()), nullptr, nullptr,
                        true, nullptr, false);
    ca_pem_ = certPem(ca_cert_.get());
    PkeyPtr server_key = newKey();
    X509Ptr server_cert = makeCert(server_key.get(), "carina-fake-apiserver", ca_cert_.get(),
                                   ca_key_.get(), false, options_.server_cert_san.c_str(), false);
    std::string cert_pem = certPem(server_cert.get());
    std::string key_pem = keyPem(server_key.get());
    ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3);
    ssl_.use_certificate_chain(net::buffer(cert_pem));
    ssl_.use_private_key(net::buffer(key_pem), ssl::context::pem);
    ssl_.add_certificate_authority(net::buffer(ca_pem_));
    // Client certificates are optional (token auth otherwise) but verified when sent.
    ssl_.set_verify_mode(ssl::verify_peer);
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    for (const k8s::ResourceKind& k :
         {k8s::Node::kResource, k8s::PersistentVolumeClaim::kResource,
          k8s::PersistentVolume::kResource, k8s::StorageClass::kResource, k8s::Pod::kResource,
          k8s::Event::kResource, k8s::NodeStorageResource::kResource,
          k8s::LogicVolume::kResource}) {
      resources_[std::string(k.plural)] = Resource{k, {}};
    }
    net::co_spawn(ioc_, acceptLoop(), net::detached);
    if (options_.bookmark_interval.count() > 0) {
      net::co_spawn(ioc_, bookmarkLoop(), net::detached);
    }
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~Impl() {
    runSync([this] {
      stopping_ = true;
      boost::system::error_code ec;
      acceptor_.close(ec);
      closeAll();
    });
    ioc_.stop();
    thread_.join();
  }

  template <class F>
  auto runSync(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    std::packaged_task<R()> task(std::forward<F>(fn));
    auto fut = task.get_future();
    net::post(ioc_, [&task] { task(); });
    return fut.get();
  }

  uint16_t port() const { return port_; }
  const std::string& caPem() const { return ca_pem_; }

  std::pair<std::string, std::string> clientCert(const std::string& user) const {
    PkeyPtr key = newKey();
    X509Ptr cert = makeCert(key.get(), user, ca_cert_.get(), ca_key_.get(), false, nullptr, true);
    return {certPem(cert.get()), keyPem(key.get())};
  }

  // ------------------------------------------------------------ store (server thread)

  Resource* resource(std::string_view plural) {
    auto it = resources_.find(std::string(plural));
    return it == resources_.end() ? nullptr : &it->second;
  }

  static std::string keyOf(const Resource& r, const std::string& ns, const std::string& name) {
    return r.kind.namespaced ? ns + "/" + name : name;
  }

  void record(Resource& r, std::string_view type, const json::value& obj) {
    int64_t rv = rv_;
    history_.push_back(HistoryEvent{rv, std::string(r.kind.plural), std::string(type), obj});
    while (history_.size() > options_.history_window) {
      compacted_rv_ = history_.front().rv;
      history_.pop_front();
    }
    std::string ns = strAt(obj, "metadata.namespace");
    std::string line;
    for (auto& w : watchers_) {
      if (w->closed || w->plural != r.kind.plural) {
        continue;
      }
      if (!w->ns.empty() && w->ns != ns) {
        continue;
      }
      if (!labelsMatch(obj, w->label_selector) || !fieldsMatch(obj, w->field_selector)) {
        continue;
      }
      if (line.empty()) {
        line = eventLine(type, obj);
      }
      w->queue.push_back(line);
      if (w->wake != nullptr) {
        w->wake->cancel();
      }
    }
  }

  void stamp(json::value& obj, const Resource& r) {
    json::object& o = obj.as_object();
    o["apiVersion"] = json::string_view(r.kind.api_version.data(), r.kind.api_version.size());
    o["kind"] = json::string_view(r.kind.kind.data(), r.kind.kind.size());
    meta(obj)["resourceVersion"] = std::to_string(++rv_);
  }

  /** Validates and stores a new object. */
  HttpResponse create(Resource& r, const std::string& url_ns, json::value obj) {
    if (!obj.is_object()) {
      return {400, statusBody(400, "BadRequest", "the body is not a JSON object")};
    }
    json::object& m = meta(obj);
    std::string name = strAt(obj, "metadata.name");
    if (name.empty()) {
      std::string gen = strAt(obj, "metadata.generateName");
      if (gen.empty()) {
        return {422, statusBody(422, "Invalid",
                                absl::StrCat(sv(r.kind.kind),
                                             " is invalid: metadata.name: Required value: name or "
                                             "generateName is required"),
                                "", r.kind.plural)};
      }
      static constexpr char kAlnum[] = "bcdfghjklmnpqrstvwxz2456789";
      name = gen;
      for (int i = 0; i < 5; ++i) {
        name.push_back(kAlnum[rng_() % (sizeof(kAlnum) - 1)]);
      }
      m["name"] = name;
    }
    std::string ns = strAt(obj, "metadata.namespace");
    if (r.kind.namespaced) {
      if (!ns.empty() && !url_ns.empty() && ns != url_ns) {
        return {400, statusBody(400, "BadRequest",
                                "the namespace of the provided object does not match the "
                                "namespace sent on the request")};
      }
      if (ns.empty()) {
        ns = url_ns;
      }
      if (ns.empty()) {
        return {422, statusBody(422, "Invalid", "metadata.namespace: Required value")};
      }
      m["namespace"] = ns;
    } else {
      m.erase("namespace");
    }
    std::string key = keyOf(r, ns, name);
    if (r.objects.count(key) != 0) {
      return {409, statusBody(409, "AlreadyExists",
                              absl::StrCat(sv(r.kind.plural), " \"", name, "\" already exists"),
                              name, r.kind.plural)};
    }
    char uid[40];
    std::snprintf(uid, sizeof uid, "%08x-%04x-4%03x-8%03x-%012llx", static_cast<unsigned>(rng_()),
                  static_cast<unsigned>(rng_() & 0xffff), static_cast<unsigned>(rng_() & 0xfff),
                  static_cast<unsigned>(rng_() & 0xfff),
                  static_cast<unsigned long long>(rng_() & 0xffffffffffffULL));
    m["uid"] = uid;
    m["creationTimestamp"] = nowRfc3339();
    if (r.kind.group == k8s::kCarinaGroup) {
      m["generation"] = 1;
    }
    stamp(obj, r);
    r.objects[key] = obj;
    record(r, "ADDED", obj);
    return {201, json::serialize(obj)};
  }

  /** Replaces a stored object; status_only / keep_status per the status subresource. */
  HttpResponse replace(Resource& r, const std::string& ns, const std::string& name, json::value obj,
                       bool status_only) {
    if (!obj.is_object()) {
      return {400, statusBody(400, "BadRequest", "the body is not a JSON object")};
    }
    std::string key = keyOf(r, ns, name);
    auto it = r.objects.find(key);
    if (it == r.objects.end()) {
      return notFound(r, name);
    }
    std::string body_name = strAt(obj, "metadata.name");
    if (!body_name.empty() && body_name != name) {
      return {400, statusBody(400, "BadRequest",
                              "the name of the object does not match the name on the URL")};
    }
    std::string want_rv = strAt(obj, "metadata.resourceVersion");
    std::string have_rv = strAt(it->second, "metadata.resourceVersion");
    if (!want_rv.empty() && want_rv != have_rv) {
      return conflict(r, name);
    }
    json::value updated;
    if (status_only) {
      updated = it->second;
      if (const json::value* st = obj.as_object().if_contains("status")) {
        updated.as_object()["status"] = *st;
      } else {
        updated.as_object().erase("status");
      }
    } else {
      updated = std::move(obj);
      json::object& m = meta(updated);
      const json::object& old_meta = it->second.as_object().at("metadata").as_object();
      m["name"] = name;
      if (r.kind.namespaced) {
        m["namespace"] = ns;
      }
      for (const char* k : {"uid", "creationTimestamp", "generation"}) {
        if (const json::value* v = old_meta.if_contains(k)) {
          m[k] = *v;
        } else {
          m.erase(k);
        }
      }
      if (r.kind.has_status) {
        if (const json::value* st = it->second.as_object().if_contains("status")) {
          updated.as_object()["status"] = *st;
        } else {
          updated.as_object().erase("status");
        }
      }
    }
    return commit(r, it, std::move(updated));
  }

  HttpResponse commit(Resource& r, std::map<std::string, json::value>::iterator it,
                      json::value updated) {
    // A write that changes nothing keeps the RV and sends no event (as kube-apiserver does).
    meta(updated)["resourceVersion"] = strAt(it->second, "metadata.resourceVersion");
    json::object& uo = updated.as_object();
    uo["apiVersion"] = json::string_view(r.kind.api_version.data(), r.kind.api_version.size());
    uo["kind"] = json::string_view(r.kind.kind.data(), r.kind.kind.size());
    if (updated == it->second) {
      return {200, json::serialize(updated)};
    }
    if (r.kind.group == k8s::kCarinaGroup) {
      // CRDs: generation counts spec changes.
      const json::value* old_spec = it->second.as_object().if_contains("spec");
      const json::value* new_spec = uo.if_contains("spec");
      bool spec_changed = (old_spec == nullptr) != (new_spec == nullptr) ||
                          (old_spec != nullptr && *old_spec != *new_spec);
      if (spec_changed) {
        int64_t gen = 0;
        if (const json::value* g = at(it->second, "metadata.generation"); g && g->is_int64()) {
          gen = g->get_int64();
        }
        meta(updated)["generation"] = gen + 1;
      }
    }
    stamp(updated, r);
    it->second = updated;
    record(r, "MODIFIED", updated);
    return {200, json::serialize(updated)};
  }

  HttpResponse mergePatch(Resource& r, const std::string& ns, const std::string& name,
                          const json::value& patch, bool status_only) {
    if (!patch.is_object()) {
      return {400, statusBody(400, "BadRequest", "the patch is not a JSON object")};
    }
    auto it = r.objects.find(keyOf(r, ns, name));
    if (it == r.objects.end()) {
      return notFound(r, name);
    }
    std::string want_rv = strAt(patch, "metadata.resourceVersion");
    if (!want_rv.empty() && want_rv != strAt(it->second, "metadata.resourceVersion")) {
      return conflict(r, name);
    }
    json::value updated = it->second;
    if (status_only) {
      if (const json::value* st = patch.as_object().if_contains("status")) {
        json::value& target = updated.as_object()["status"];
        k8s::internal::applyMergePatch(target, *st);
        if (target.is_null()) {
          updated.as_object().erase("status");
        }
      }
    } else {
      json::value p = patch;
      if (r.kind.has_status) {
        p.as_object().erase("status");
      }
      if (json::value* pm = p.as_object().if_contains("metadata"); pm && pm->is_object()) {
        for (const char* k : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
          pm->as_object().erase(k);
        }
      }
      k8s::internal::applyMergePatch(updated, p);
    }
    return commit(r, it, std::move(updated));
  }

  HttpResponse remove(Resource& r, const std::string& ns, const std::string& name) {
    auto it = r.objects.find(keyOf(r, ns, name));
    if (it == r.objects.end()) {
      return notFound(r, name);
    }
    json::value obj = std::move(it->second);
    r.objects.erase(it);
    meta(obj)["resourceVersion"] = std::to_string(++rv_);
    record(r, "DELETED", obj);
    return {200, json::serialize(obj)};
  }

  HttpResponse notFound(const Resource& r, const std::string& name) {
    return {404, statusBody(404, "NotFound",
                            absl::StrCat(sv(r.kind.plural), " \"", name, "\" not found"), name,
                            r.kind.plural)};
  }
  HttpResponse conflict(const Resource& r, const std::string& name) {
    return {409, statusBody(409, "Conflict",
                            absl::StrCat("Operation cannot be fulfilled on ", sv(r.kind.plural),
                                         " \"", name,
                                         "\": the object has been modified; please apply your "
                                         "changes to the latest version and try again"),
                            name, r.kind.plural)};
  }

  HttpResponse list(Resource& r, const std::string& ns, std::map<std::string, std::string>& q) {
    uint64_t limit = 0;
    if (auto it = q.find("limit"); it != q.end()) {
      limit = std::strtoull(it->second.c_str(), nullptr, 10);
    }
    int64_t list_rv = rv_;
    std::string after;
    if (auto it = q.find("continue"); it != q.end() && !it->second.empty()) {
      std::string decoded;
      if (!absl::WebSafeBase64Unescape(it->second, &decoded) ||
          decoded.find('|') == std::string::npos) {
        return {400, statusBody(400, "BadRequest", "invalid continue token")};
      }
      list_rv = std::strtoll(decoded.substr(0, decoded.find('|')).c_str(), nullptr, 10);
      after = decoded.substr(decoded.find('|') + 1);
      if (list_rv < compacted_rv_) {
        return {410, statusBody(410, "Expired",
                                "The provided continue parameter is too old to display a "
                                "consistent list result. You can start a new list without the "
                                "continue parameter.")};
      }
    }
    json::array items;
    std::string last_key;
    bool more = false;
    auto it = after.empty() ? r.objects.begin() : r.objects.upper_bound(after);
    for (; it != r.objects.end(); ++it) {
      const json::value& obj = it->second;
      if (!ns.empty() && strAt(obj, "metadata.namespace") != ns) {
        continue;
      }
      if (!labelsMatch(obj, q["labelSelector"]) || !fieldsMatch(obj, q["fieldSelector"])) {
        continue;
      }
      if (limit > 0 && items.size() >= limit) {
        more = true;
        break;
      }
      json::value item = obj;
      // As kube-apiserver: list items carry no apiVersion/kind.
      item.as_object().erase("apiVersion");
      item.as_object().erase("kind");
      items.push_back(std::move(item));
      last_key = it->first;
    }
    json::object listmeta{{"resourceVersion", std::to_string(list_rv)}};
    if (more) {
      listmeta["continue"] = absl::WebSafeBase64Escape(absl::StrCat(list_rv, "|", last_key));
    }
    json::object body{
        {"kind", absl::StrCat(sv(r.kind.kind), "List")},
        {"apiVersion", json::string_view(r.kind.api_version.data(), r.kind.api_version.size())},
        {"metadata", std::move(listmeta)},
        {"items", std::move(items)}};
    return {200, json::serialize(body)};
  }

  // ------------------------------------------------------------ HTTP

  net::awaitable<void> acceptLoop() {
    while (!stopping_) {
      auto [ec, sock] = co_await acceptor_.async_accept(kTuple);
      if (ec) {
        if (stopping_ || ec == net::error::operation_aborted) {
          co_return;
        }
        continue;
      }
      net::co_spawn(ioc_, session(std::move(sock)), net::detached);
    }
  }

  net::awaitable<void> bookmarkLoop() {
    net::steady_timer t(ioc_);
    while (!stopping_) {
      t.expires_after(options_.bookmark_interval);
      co_await t.async_wait(kTuple);
      bookmarkAll();
    }
  }

  void bookmarkAll() {
    for (auto& w : watchers_) {
      if (w->closed || !w->bookmarks) {
        continue;
      }
      Resource* r = resource(w->plural);
      json::object obj{
          {"kind", json::string_view(r->kind.kind.data(), r->kind.kind.size())},
          {"apiVersion", json::string_view(r->kind.api_version.data(), r->kind.api_version.size())},
          {"metadata", json::object{{"resourceVersion", std::to_string(rv_)}}}};
      w->queue.push_back(eventLine("BOOKMARK", obj));
      if (w->wake != nullptr) {
        w->wake->cancel();
      }
    }
  }

  void closeAll() {
    for (auto& [id, s] : sessions_) {
      boost::system::error_code ec;
      beast::get_lowest_layer(*s.stream).socket().shutdown(tcp::socket::shutdown_both, ec);
      beast::get_lowest_layer(*s.stream).socket().close(ec);
      if (s.watcher) {
        s.watcher->closed = true;
        if (s.watcher->wake != nullptr) {
          s.watcher->wake->cancel();
        }
      }
    }
  }

  net::awaitable<void> session(tcp::socket sock) {
    auto stream = std::make_shared<Stream>(std::move(sock), ssl_);
    uint64_t id = next_session_++;
    sessions_[id] = Session{stream, nullptr};
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(30));
    auto [hec] = co_await stream->async_handshake(ssl::stream_base::server, kTuple);
    if (!hec) {
      bool has_client_cert = false;
      if (X509* peer = SSL_get1_peer_certificate(stream->native_handle())) {
        has_client_cert = SSL_get_verify_result(stream->native_handle()) == X509_V_OK;
        X509_free(peer);
      }
      beast::flat_buffer buffer;
      while (!stopping_) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(120));
        auto [rec, n] = co_await http::async_read(*stream, buffer, parser, kTuple);
        (void)n;
        if (rec) {
          break;
        }
        auto req = parser.release();
        bool keep = req.keep_alive();
        bool streamed = false;
        HttpResponse res = co_await handle(req, stream, id, has_client_cert, streamed);
        if (streamed) {
          break;  // a watch: the connection is closed after it ends
        }
        http::response<http::string_body> out{static_cast<http::status>(res.status), req.version()};
        out.set(http::field::content_type, "application/json");
        out.set(http::field::server, "carina-fake-apiserver");
        out.body() = std::move(res.body);
        out.keep_alive(keep);
        out.prepare_payload();
        beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(30));
        auto [wec, wn] = co_await http::async_write(*stream, out, kTuple);
        (void)wn;
        if (wec || !keep) {
          break;
        }
      }
    }
    sessions_.erase(id);
    boost::system::error_code ec;
    beast::get_lowest_layer(*stream).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(*stream).socket().close(ec);
  }

  net::awaitable<HttpResponse> handle(const http::request<http::string_body>& req,
                                      std::shared_ptr<Stream> stream, uint64_t session_id,
                                      bool has_client_cert, bool& streamed) {
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    std::string query =
        target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
    {
      std::lock_guard lock(log_mu_);
      requests_.push_back(
          {std::string(req.method_string()), path, query, std::chrono::steady_clock::now()});
    }
    if (fail_next_ > 0) {
      --fail_next_;
      co_return HttpResponse{
          fail_status_,
          statusBody(fail_status_, fail_status_ == 503 ? "ServiceUnavailable" : "InternalError",
                     "injected failure")};
    }
    std::string auth(req[http::field::authorization]);
    if (!has_client_cert && auth != "Bearer " + token_) {
      co_return HttpResponse{401, statusBody(401, "Unauthorized", "Unauthorized")};
    }
    std::map<std::string, std::string> q;
    for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
      auto eq = kv.find('=');
      std::string k = percentDecode(std::string_view(kv.data(), kv.size()).substr(0, eq));
      std::string v = eq == absl::string_view::npos
                          ? ""
                          : percentDecode(std::string_view(kv.data(), kv.size()).substr(eq + 1));
      q[k] = v;
    }
    std::vector<std::string> seg;
    for (absl::string_view s : absl::StrSplit(path, '/', absl::SkipEmpty())) {
      seg.push_back(percentDecode(std::string_view(s.data(), s.size())));
    }
    std::string group;
    std::size_t i = 0;
    if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1") {
      i = 2;
    } else if (seg.size() >= 3 && seg[0] == "apis") {
      group = seg[1];
      i = 3;
    } else {
      co_return HttpResponse{404, statusBody(404, "NotFound",
                                             "the server could not find the "
                                             "requested resource")};
    }
    std::string ns;
    if (seg.size() >= i + 3 && seg[i] == "namespaces") {
      ns = seg[i + 1];
      i += 2;
    }
    if (seg.size() <= i) {
      co_return HttpResponse{404, statusBody(404, "NotFound", "no resource")};
    }
    Resource* r = resource(seg[i]);
    if (r == nullptr || r->kind.group != group) {
      co_return HttpResponse{404, statusBody(404, "NotFound",
                                             "the server could not find the "
                                             "requested resource")};
    }
    std::string name = seg.size() > i + 1 ? seg[i + 1] : "";
    bool status_sub = seg.size() > i + 2 && seg[i + 2] == "status";
    if (seg.size() > i + 3 || (seg.size() == i + 3 && !status_sub) ||
        (status_sub && !r->kind.has_status) || (!r->kind.namespaced && !ns.empty())) {
      co_return HttpResponse{404, statusBody(404, "NotFound",
                                             "the server could not find the "
                                             "requested resource")};
    }
    std::string verb;
    bool is_watch = q["watch"] == "true" || q["watch"] == "1";
    switch (req.method()) {
      case http::verb::get:
        verb = !name.empty() ? "get" : is_watch ? "watch" : "list";
        break;
      case http::verb::post:
        verb = name.empty() ? "create" : "";
        break;
      case http::verb::put:
        verb = name.empty() ? "" : "update";
        break;
      case http::verb::patch:
        verb = name.empty() ? "" : "patch";
        break;
      case http::verb::delete_:
        verb = name.empty() ? "" : "delete";
        break;
      default:
        break;
    }
    if (verb.empty()) {
      co_return HttpResponse{405, statusBody(405, "MethodNotAllowed", "method not allowed")};
    }
    if (forbidden_.count(verb + " " + std::string(r->kind.plural)) != 0) {
      co_return HttpResponse{
          403, statusBody(403, "Forbidden",
                          absl::StrCat(sv(r->kind.plural),
                                       " is forbidden: User \"system:serviceaccount:kube-system:"
                                       "carina\" cannot ",
                                       verb, " resource \"", sv(r->kind.plural),
                                       "\" in API group \"", group, "\""),
                          name, r->kind.plural)};
    }
    auto parseBody = [&]() -> std::optional<json::value> {
      boost::system::error_code ec;
      json::value v = json::parse(req.body(), ec);
      if (ec) {
        return std::nullopt;
      }
      return v;
    };
    if (verb == "get") {
      auto it = r->objects.find(keyOf(*r, ns, name));
      if (it == r->objects.end()) {
        co_return notFound(*r, name);
      }
      co_return HttpResponse{200, json::serialize(it->second)};
    }
    if (verb == "list") {
      co_return list(*r, ns, q);
    }
    if (verb == "watch") {
      streamed = true;
      co_await serveWatch(*r, ns, q, stream, session_id);
      co_return HttpResponse{};
    }
    if (verb == "delete") {
      co_return remove(*r, ns, name);
    }
    auto body = parseBody();
    if (!body) {
      co_return HttpResponse{400, statusBody(400, "BadRequest", "invalid JSON body")};
    }
    if (verb == "create") {
      co_return create(*r, ns, std::move(*body));
    }
    if (verb == "update") {
      co_return replace(*r, ns, name, std::move(*body), status_sub);
    }
    std::string ct(req[http::field::content_type]);
    if (ct.rfind("application/merge-patch+json", 0) != 0) {
      co_return HttpResponse{415, statusBody(415, "UnsupportedMediaType",
                                             absl::StrCat("the body of the request was in an "
                                                          "unknown format - accepted media types "
                                                          "include: application/merge-patch+json "
                                                          "(got ",
                                                          ct, ")"))};
    }
    co_return mergePatch(*r, ns, name, *body, status_sub);
  }

  net::awaitable<void> writeChunk(Stream& stream, const std::string& data, bool& ok) {
    char head[32];
    int n = std::snprintf(head, sizeof head, "%zx\r\n", data.size());
    std::array<net::const_buffer, 3> bufs{net::buffer(head, static_cast<std::size_t>(n)),
                                          net::buffer(data), net::buffer("\r\n", 2)};
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    auto [ec, written] = co_await net::async_write(stream, bufs, kTuple);
    (void)written;
    ok = !ec;
  }

  net::awaitable<void> serveWatch(Resource& r, const std::string& ns,
                                  std::map<std::string, std::string>& q,
                                  std::shared_ptr<Stream> stream, uint64_t session_id) {
    std::string rv_text = q["resourceVersion"];
    int64_t from = rv_text.empty() ? 0 : std::strtoll(rv_text.c_str(), nullptr, 10);
    bool initial = rv_text.empty() || rv_text == "0";
    auto watcher = std::make_shared<Watcher>();
    watcher->plural = std::string(r.kind.plural);
    watcher->ns = ns;
    watcher->label_selector = q["labelSelector"];
    watcher->field_selector = q["fieldSelector"];
    watcher->bookmarks = q["allowWatchBookmarks"] == "true";
    int64_t timeout_s = q.count("timeoutSeconds") != 0
                            ? std::strtoll(q["timeoutSeconds"].c_str(), nullptr, 10)
                            : 1800;
    bool gone = !initial && from < compacted_rv_;
    std::string expired = statusBody(
        410, "Expired", absl::StrCat("too old resource version: ", from, " (", compacted_rv_, ")"));
    if (gone && options_.gone_as_http_status) {
      http::response<http::string_body> out{http::status::gone, 11};
      out.set(http::field::content_type, "application/json");
      out.body() = expired;
      out.keep_alive(false);
      out.prepare_payload();
      co_await http::async_write(*stream, out, kTuple);
      co_return;
    }
    std::string header =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Cache-Control: no-cache, private\r\n\r\n";
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(30));
    auto [hec, hn] = co_await net::async_write(*stream, net::buffer(header), kTuple);
    (void)hn;
    if (hec) {
      co_return;
    }
    if (gone) {
      json::value st = json::parse(expired);
      bool ok = true;
      co_await writeChunk(*stream, eventLine("ERROR", st), ok);
      co_await writeChunk(*stream, "", ok);  // terminating chunk "0\r\n\r\n"
      co_return;
    }
    // Initial state or replay, then live events (queued synchronously by record()).
    auto matches = [&](const json::value& obj) {
      return (ns.empty() || strAt(obj, "metadata.namespace") == ns) &&
             labelsMatch(obj, watcher->label_selector) && fieldsMatch(obj, watcher->field_selector);
    };
    if (initial) {
      for (const auto& [key, obj] : r.objects) {
        if (matches(obj)) {
          watcher->queue.push_back(eventLine("ADDED", obj));
        }
      }
    } else {
      for (const auto& ev : history_) {
        if (ev.rv > from && ev.plural == r.kind.plural && matches(ev.object)) {
          watcher->queue.push_back(eventLine(ev.type, ev.object));
        }
      }
    }
    net::steady_timer wake(ioc_);
    watcher->wake = &wake;
    watchers_.push_back(watcher);
    sessions_[session_id].watcher = watcher;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    bool ok = true;
    while (ok && !watcher->closed && !stopping_) {
      if (!watcher->queue.empty()) {
        // Coalesce queued lines into one write (each line stays one JSON document).
        std::string batch;
        while (!watcher->queue.empty() && batch.size() < 256 * 1024) {
          batch += watcher->queue.front();
          watcher->queue.pop_front();
        }
        co_await writeChunk(*stream, batch, ok);
        continue;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        co_await writeChunk(*stream, "", ok);  // normal end of the watch
        break;
      }
      wake.expires_at(deadline);
      co_await wake.async_wait(kTuple);
    }
    watcher->closed = true;
    watcher->wake = nullptr;
    std::erase(watchers_, watcher);
  }

  FakeApiServerOptions options_;
  std::string token_;
  net::io_context ioc_;
  ssl::context ssl_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  PkeyPtr ca_key_;
  X509Ptr ca_cert_;
  std::string ca_pem_;
  std::thread thread_;
  bool stopping_ = false;
  std::mt19937_64 rng_{std::random_device{}()};

  // Server-thread state.
  std::map<std::string, Resource> resources_;
  int64_t rv_ = 1000;
  int64_t compacted_rv_ = 0;
  std::deque<HistoryEvent> history_;
  std::vector<std::shared_ptr<Watcher>> watchers_;
  std::map<uint64_t, Session> sessions_;
  uint64_t next_session_ = 1;
  int fail_next_ = 0;
  unsigned fail_status_ = 500;
  std::set<std::string> forbidden_;

  std::mutex log_mu_;
  std::vector<RequestRecord> requests_;
};

// ---------------------------------------------------------------- public API

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
FakeApiServer::~FakeApiServer() = default;

uint16_t FakeApiServer::port() const { return impl_->port(); }
const std::string& FakeApiServer::caPem() const { return impl_->caPem(); }

k8s::ClientConfig FakeApiServer::clientConfig() const {
  k8s::ClientConfig c;
  c.host = "127.0.0.1";
  c.port = port();
  c.ca_pem = caPem();
  c.token = impl_->runSync([this] { return impl_->token_; });
  c.qps = 0;  // tests opt in to rate limiting
  c.request_timeout = std::chrono::seconds(10);
  c.watch_idle_timeout = std::chrono::seconds(30);
  return c;
}

std::pair<std::string, std::string> FakeApiServer::issueClientCertificate(
    const std::string& user) const {
  return impl_->clientCert(user);
}

absl::StatusOr<std::string> FakeApiServer::upsert(const k8s::ResourceKind& kind,
                                                  const std::string& text) {
  return impl_->runSync([&]() -> absl::StatusOr<std::string> {
    auto* res = impl_->resource(kind.plural);
    if (res == nullptr) {
      return absl::NotFoundError("unknown resource");
    }
    boost::system::error_code ec;
    json::value obj = json::parse(text, ec);
    if (ec || !obj.is_object()) {
      return absl::InvalidArgumentError("not a JSON object");
    }
    std::string ns = strAt(obj, "metadata.namespace");
    std::string name = strAt(obj, "metadata.name");
    auto it = res->objects.find(Impl::keyOf(*res, ns, name));
    HttpResponse out;
    if (it == res->objects.end()) {
      out = impl_->create(*res, ns, std::move(obj));
    } else {
      k8s::internal::applyMergePatch(obj, json::parse(R"({"metadata":{"resourceVersion":null}})"));
      json::value copy = obj;
      json::object& m = meta(copy);
      const json::object& old_meta = it->second.as_object().at("metadata").as_object();
      for (const char* k : {"uid", "creationTimestamp"}) {
        if (const json::value* v = old_meta.if_contains(k)) {
          m[k] = *v;
        }
      }
      out = impl_->commit(*res, it, std::move(copy));
    }
    if (out.status >= 300) {
      return absl::InvalidArgumentError(out.body);
    }
    return out.body;
  });
}

absl::Status FakeApiServer::upsertMany(const k8s::ResourceKind& kind,
                                       const std::vector<std::string>& jsons) {
  return impl_->runSync([&]() -> absl::Status {
    auto* res = impl_->resource(kind.plural);
    if (res == nullptr) {
      return absl::NotFoundError("unknown resource");
    }
    for (const auto& text : jsons) {
      boost::system::error_code ec;
      json::value obj = json::parse(text, ec);
      if (ec || !obj.is_object()) {
        return absl::InvalidArgumentError("not a JSON object");
      }
      std::string ns = strAt(obj, "metadata.namespace");
      HttpResponse out = impl_->create(*res, ns, std::move(obj));
      if (out.status >= 300) {
        return absl::InvalidArgumentError(out.body);
      }
    }
    return absl::OkStatus();
  });
}

absl::Status FakeApiServer::patchMany(const k8s::ResourceKind& kind,
                                      const std::vector<PatchSpec>& patches) {
  return impl_->runSync([&]() -> absl::Status {
    auto* res = impl_->resource(kind.plural);
    if (res == nullptr) {
      return absl::NotFoundError("unknown resource");
    }
    for (const auto& p : patches) {
      boost::system::error_code ec;
      json::value patch = json::parse(p.merge_patch, ec);
      auto it = res->objects.find(Impl::keyOf(*res, p.ns, p.name));
      if (ec || it == res->objects.end()) {
        return absl::InvalidArgumentError("bad patch or unknown object " + p.name);
      }
      json::value updated = it->second;
      k8s::internal::applyMergePatch(updated, patch);
      impl_->commit(*res, it, std::move(updated));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> FakeApiServer::patch(const k8s::ResourceKind& kind,
                                                 const std::string& ns, const std::string& name,
                                                 const std::string& merge_patch) {
  return impl_->runSync([&]() -> absl::StatusOr<std::string> {
    auto* res = impl_->resource(kind.plural);
    boost::system::error_code ec;
    json::value p = json::parse(merge_patch, ec);
    if (res == nullptr || ec) {
      return absl::InvalidArgumentError("bad resource or patch");
    }
    auto it = res->objects.find(Impl::keyOf(*res, ns, name));
    if (it == res->objects.end()) {
      return absl::NotFoundError(name);
    }
    json::value updated = it->second;
    k8s::internal::applyMergePatch(updated, p);
    HttpResponse out = impl_->commit(*res, it, std::move(updated));
    return out.body;
  });
}

absl::Status FakeApiServer::erase(const k8s::ResourceKind& kind, const std::string& ns,
                                  const std::string& name) {
  return impl_->runSync([&]() -> absl::Status {
    auto* res = impl_->resource(kind.plural);
    if (res == nullptr) {
      return absl::NotFoundError("unknown resource");
    }
    HttpResponse out = impl_->remove(*res, ns, name);
    return out.status == 200 ? absl::OkStatus() : absl::NotFoundError(name);
  });
}

std::optional<std::string> FakeApiServer::object(const k8s::ResourceKind& kind,
                                                 const std::string& ns, const std::string& name) {
  return impl_->runSync([&]() -> std::optional<std::string> {
    auto* res = impl_->resource(kind.plural);
    if (res == nullptr) {
      return std::nullopt;
    }
    auto it = res->objects.find(Impl::keyOf(*res, ns, name));
    if (it == res->objects.end()) {
      return std::nullopt;
    }
    return json::serialize(it->second);
  });
}

std::vector<std::string> FakeApiServer::objects(const k8s::ResourceKind& kind) {
  return impl_->runSync([&]() -> std::vector<std::string> {
    std::vector<std::string> out;
    if (auto* res = impl_->resource(kind.plural); res != nullptr) {
      for (const auto& entry : res->objects) {
        out.push_back(json::serialize(entry.second));
      }
    }
    return out;
  });
}

std::size_t FakeApiServer::objectCount(const k8s::ResourceKind& kind) {
  return impl_->runSync([&]() -> std::size_t {
    auto* res = impl_->resource(kind.plural);
    return res == nullptr ? 0 : res->objects.size();
  });
}

int64_t FakeApiServer::resourceVersion() {
  return impl_->runSync([this] { return impl_->rv_; });
}

void FakeApiServer::dropConnections() {
  impl_->runSync([this] { impl_->closeAll(); });
}

void FakeApiServer::failNextRequests(int n, unsigned status) {
  impl_->runSync([&] {
    impl_->fail_next_ = n;
    impl_->fail_status_ = status;
  });
}

void FakeApiServer::forbid(const std::string& verb, const std::string& plural) {
  impl_->runSync([&] { impl_->forbidden_.insert(verb + " " + plural); });
}

void FakeApiServer::allow(const std::string& verb, const std::string& plural) {
  impl_->runSync([&] { impl_->forbidden_.erase(verb + " " + plural); });
}

void FakeApiServer::setToken(const std::string& token) {
  impl_->runSync([&] { impl_->token_ = token; });
}

void FakeApiServer::compactHistory() {
  impl_->runSync([this] {
    impl_->history_.clear();
    impl_->compacted_rv_ = impl_->rv_;
  });
}

void FakeApiServer::sendBookmarks() {
  impl_->runSync([this] { impl_->bookmarkAll(); });
}

std::size_t FakeApiServer::activeWatches() {
  return impl_->runSync([this] { return impl_->watchers_.size(); });
}

uint64_t FakeApiServer::requestCount() {
  std::lock_guard lock(impl_->log_mu_);
  return impl_->requests_.size();
}

std::vector<RequestRecord> FakeApiServer::requests() {
  std::lock_guard lock(impl_->log_mu_);
  return impl_->requests_;
}

}  // namespace carina::test
