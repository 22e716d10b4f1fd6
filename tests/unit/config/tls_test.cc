// The tls section: schema errors with their positions, files that must be
// readable at load time, and certificates that must actually load (checked
// by build_tls before a reload may swap them in).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "proxy/net/tls.h"

namespace mongoguard::config {
namespace {

namespace fs = std::filesystem;

class TlsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mg-tls-unit-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // A self-signed P-256 certificate and its key, as PEM files.
  void make_cert(const std::string& cert_name, const std::string& key_name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    FILE* f = std::fopen((dir_ / cert_name).c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen((dir_ / key_name).c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(TlsConfigTest, FullSectionParses) {
  const auto cert = write("server.pem", "x");
  const auto key = write("server.key", "x");
  const auto ca = write("ca.pem", "x");
  auto r = parse_config("tls:\n  client:\n    cert: " + cert + "\n    key: " + key +
                            "\n    ca: " + ca + "\n  upstream:\n    ca: " + ca +
                            "\n    server_name: db.internal\n    cert: " + cert +
                            "\n    key: " + key + "\n",
                        "p.yaml");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& tls = r.config->tls;
  ASSERT_TRUE(tls.client);
  EXPECT_EQ(tls.client->cert.path, cert);
  EXPECT_EQ(tls.client->cert.line, 3);
  EXPECT_EQ(tls.client->cert.column, 11);
  ASSERT_TRUE(tls.client->ca);
  ASSERT_TRUE(tls.upstream);
  EXPECT_TRUE(tls.upstream->verify_hostname);  // the default
  EXPECT_EQ(tls.upstream->server_name.value_or(""), "db.internal");
  ASSERT_TRUE(tls.upstream->cert && tls.upstream->key);
  EXPECT_EQ(tls.files().size(), 6u);
}

TEST_F(TlsConfigTest, NoTlsSectionMeansPlainTcp) {
  auto r = parse_config("listen: 127.0.0.1:27017\n", "p.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->tls.client);
  EXPECT_FALSE(r.config->tls.upstream);
  EXPECT_TRUE(r.config->tls.files().empty());
}

TEST_F(TlsConfigTest, SchemaErrorsCarryTheirPositions) {
  const auto cert = write("server.pem", "x");
  auto r = parse_config("tls:\n  client:\n    cert: " + cert +
                            "\n    pem: nope\n  upstream:\n    verify_hostname: maybe\n"
                            "    cert: " +
                            cert + "\n  extra: 1\n",
                        "p.yaml");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> lines;
  for (const auto& e : r.errors) lines.push_back(e.to_string());
  ASSERT_EQ(lines.size(), 5u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "p.yaml:3:5: tls.client needs key (the certificate's private key, PEM)");
  EXPECT_NE(lines[1].find("p.yaml:4:5: unknown key 'pem' in tls.client"), std::string::npos);
  EXPECT_EQ(lines[2], "p.yaml:6:22: tls.upstream.verify_hostname must be true or false");
  EXPECT_EQ(lines[3], "p.yaml:7:11: tls.upstream.cert needs tls.upstream.key as well");
  EXPECT_NE(lines[4].find("p.yaml:8:3: unknown key 'extra' in tls"), std::string::npos);
}

TEST_F(TlsConfigTest, UnreadableFilesAreErrorsAtLoad) {
  auto r = parse_config(
      "tls:\n  client:\n    cert: " + path("missing.pem") + "\n    key: " + dir_.string() + "\n",
      "p.yaml");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_EQ(r.errors[0].column, 11);
  EXPECT_NE(r.errors[0].message.find("tls.client.cert: cannot read"), std::string::npos);
  EXPECT_NE(r.errors[0].message.find("No such file"), std::string::npos);
  EXPECT_EQ(r.errors[1].line, 4);
  EXPECT_NE(r.errors[1].message.find("it is a directory"), std::string::npos);
}

TEST_F(TlsConfigTest, WrongShapes) {
  auto r = parse_config("tls: yes\n", "p.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "p.yaml:1:6: tls must be a mapping with client and/or upstream");
  r = parse_config("tls:\n  upstream: [a]\n  client: x\n", "p.yaml");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors[1].line, 3);
  r = parse_config("tls:\n  upstream:\n", "p.yaml");  // TLS upstream with the system's CAs
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.config->tls.upstream);
  EXPECT_FALSE(r.config->tls.upstream->ca);
}

TEST_F(TlsConfigTest, BuildLoadsGoodCertificates) {
  make_cert("server.pem", "server.key");
  auto r = parse_config("tls:\n  client:\n    cert: " + path("server.pem") +
                            "\n    key: " + path("server.key") + "\n    ca: " + path("server.pem") +
                            "\n  upstream:\n    ca: " + path("server.pem") +
                            "\n    verify_hostname: false\n    server_name: db.internal\n",
                        "p.yaml");
  ASSERT_TRUE(r.ok());
  auto built = proxy::build_tls(r.config->tls, "p.yaml");
  ASSERT_TRUE(built.errors.empty()) << built.errors[0].to_string();
  ASSERT_TRUE(built.contexts);
  EXPECT_TRUE(built.contexts->client);
  EXPECT_TRUE(built.contexts->upstream);
  EXPECT_FALSE(built.contexts->verify_hostname);
  EXPECT_EQ(built.contexts->server_name.value_or(""), "db.internal");
}

TEST_F(TlsConfigTest, BuildRefusesBrokenCertificatesAtTheirLines) {
  make_cert("server.pem", "server.key");
  make_cert("other.pem", "other.key");
  write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64\n");
  auto r = parse_config("tls:\n  client:\n    cert: " + path("garbage.pem") +
                            "\n    key: " + path("server.key") +
                            "\n  upstream:\n    ca: " + path("garbage.pem") + "\n",
                        "p.yaml");
  ASSERT_TRUE(r.ok());
  auto built = proxy::build_tls(r.config->tls, "p.yaml");
  EXPECT_FALSE(built.contexts);
  ASSERT_EQ(built.errors.size(), 2u);
  EXPECT_EQ(built.errors[0].line, 3);
  EXPECT_EQ(built.errors[0].column, 11);
  EXPECT_NE(built.errors[0].message.find("tls.client.cert: cannot load " + path("garbage.pem")),
            std::string::npos)
      << built.errors[0].message;
  EXPECT_EQ(built.errors[1].line, 6);
  EXPECT_NE(built.errors[1].message.find("tls.upstream.ca"), std::string::npos);

  // A key that belongs to another certificate.
  r = parse_config(
      "tls:\n  client:\n    cert: " + path("server.pem") + "\n    key: " + path("other.key") + "\n",
      "p.yaml");
  ASSERT_TRUE(r.ok());
  built = proxy::build_tls(r.config->tls, "p.yaml");
  ASSERT_EQ(built.errors.size(), 1u);
  EXPECT_EQ(built.errors[0].line, 4);
  EXPECT_NE(built.errors[0].message.find("does not belong to the certificate"), std::string::npos)
      << built.errors[0].message;
}

TEST_F(TlsConfigTest, AdminTlsParsesAndBuilds) {
  make_cert("admin.pem", "admin.key");
  auto r = parse_config("admin:\n  listen: 0.0.0.0:9901\n  tls:\n    cert: " + path("admin.pem") +
                            "\n    key: " + path("admin.key") + "\n",
                        "f.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_TRUE(r.config->admin_tls);
  EXPECT_EQ(r.config->admin_tls->cert.path, path("admin.pem"));
  auto built = proxy::build_admin_tls(*r.config->admin_tls, "f.yaml");
  EXPECT_TRUE(built.errors.empty());
  EXPECT_TRUE(built.context);
}

TEST_F(TlsConfigTest, AdminTlsErrors) {
  auto missing_key = parse_config("admin:\n  tls:\n    cert: /nonexistent.pem\n", "f.yaml");
  ASSERT_FALSE(missing_key.ok());
  bool said_key = false;
  for (const auto& e : missing_key.errors) {
    said_key = said_key || e.message.find("admin.tls needs key") != std::string::npos;
  }
  EXPECT_TRUE(said_key);
  // A key that is not PEM: found when the context is built, at the key's line.
  make_cert("admin.pem", "admin.key");
  write("junk.key", "not a key\n");
  auto r = parse_config(
      "admin:\n  tls:\n    cert: " + path("admin.pem") + "\n    key: " + path("junk.key") + "\n",
      "f.yaml");
  ASSERT_TRUE(r.ok());
  auto built = proxy::build_admin_tls(*r.config->admin_tls, "f.yaml");
  ASSERT_FALSE(built.errors.empty());
  EXPECT_EQ(built.errors.front().line, 4);
  EXPECT_NE(built.errors.front().message.find("admin.tls.key"), std::string::npos);
  EXPECT_FALSE(built.context);
}

}  // namespace
}  // namespace mongoguard::config
