#include "api/common/npz.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <set>
#include <string_view>

#include <unistd.h>
#include <zip.h>

#include "api/common/npy_format.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace idattn::npz {

namespace {

namespace fmt = npy::format;

// Deflate emits at most 258 bytes per 2 bits of input (a length/distance pair
// of the shortest codes): 1032 bytes per compressed byte, plus a block header.
constexpr std::uint64_t kMaxDeflateRatio = 1032;
constexpr std::uint64_t kDeflateSlack = 64;

constexpr std::size_t kChunk = std::size_t{1} << 20;  // bytes inflated per zip_fread

struct ArchiveCloser {
    void operator()(zip_t* z) const { zip_discard(z); }  // read-only: nothing to write back
};
struct MemberCloser {
    void operator()(zip_file_t* f) const { zip_fclose(f); }
};
struct SourceFree {
    void operator()(zip_source_t* s) const { zip_source_free(s); }
};

std::string zip_error_text(int code) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    std::string s = zip_error_strerror(&e);
    zip_error_fini(&e);
    return s;
}

std::string member_label(const std::string& file_name, const std::string& label) {
    return "member '" + file_name + "' of " + label;
}

// One member as the central directory declares it.
struct Entry {
    zip_uint64_t index = 0;
    std::string file_name;  // NAME.npy
    std::string name;       // NAME
    zip_uint64_t size = 0;  // uncompressed bytes
};

// The member's declared name, method and sizes, checked before anything is inflated.
Entry check_entry(zip_t* za, zip_uint64_t index, std::uintmax_t file_size, std::set<std::string>& seen,
                  const std::string& path, const std::string& label) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(za, index, 0, &st) != 0)
        fmt::fail(label, path, "cannot read entry " + std::to_string(index) + " of the zip archive: " +
                                   zip_strerror(za));
    constexpr zip_uint64_t kNeeded = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD |
                                     ZIP_STAT_ENCRYPTION_METHOD;
    if ((st.valid & kNeeded) != kNeeded)
        fmt::fail(label, path, "entry " + std::to_string(index) + " of the zip archive lacks its name, sizes or "
                               "compression method: the archive is corrupt");
    Entry e{index, st.name, "", st.size};
    const std::string who = member_label(e.file_name, label);
    const std::string_view suffix = ".npy";
    if (e.file_name.size() < suffix.size() || e.file_name.compare(e.file_name.size() - 4, 4, suffix) != 0)
        fmt::fail(who, path, "is not a .npy array (every member of an .npz is NAME.npy, as np.savez writes)");
    e.name = e.file_name.substr(0, e.file_name.size() - 4);
    if (e.name.empty()) fmt::fail(who, path, "has an empty array name");
    if (e.name.find('/') != std::string::npos)
        fmt::fail(who, path, "is in a folder of the archive; np.savez writes every array at the top level");
    if (!seen.insert(e.name).second)
        fmt::fail(who, path, "appears twice in the archive (duplicate member names)");
    if (st.encryption_method != ZIP_EM_NONE) fmt::fail(who, path, "is encrypted");
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
        fmt::fail(who, path, "is compressed with zip method " + std::to_string(st.comp_method) +
                                 "; only stored (np.savez) and deflated (np.savez_compressed) members are read");
    if (st.comp_size > file_size)
        fmt::fail(who, path, "declares " + std::to_string(st.comp_size) + " compressed bytes, more than the whole " +
                                 "file (" + std::to_string(file_size) + " bytes): the archive is corrupt");
    const zip_uint64_t ceiling =
        st.comp_method == ZIP_CM_STORE ? st.comp_size : st.comp_size * kMaxDeflateRatio + kDeflateSlack;
    if (e.size > ceiling)
        fmt::fail(who, path, "declares an uncompressed size of " + std::to_string(e.size) + " bytes from " +
                                 std::to_string(st.comp_size) + " " +
                                 (st.comp_method == ZIP_CM_STORE ? "stored" : "deflated") +
                                 " bytes, more than they can hold (a zip bomb or a corrupt archive)");
    return e;
}

// The member's bytes, inflated chunk by chunk: memory follows the bytes that
// really arrive (reserve only reserves), and never exceeds the declared size.
std::string read_member(zip_t* za, const Entry& e, const std::string& who, const std::string& path) {
    const std::unique_ptr<zip_file_t, MemberCloser> zf(zip_fopen_index(za, e.index, 0));
    if (!zf) fmt::fail(who, path, std::string("cannot be opened: ") + zip_strerror(za));
    std::string bytes;
    bytes.reserve(static_cast<std::size_t>(e.size));
    std::string chunk(static_cast<std::size_t>(std::min<zip_uint64_t>(kChunk, e.size + 1)), '\0');
    for (;;) {
        // One byte past the declared size is asked for, to find a member longer than declared.
        const zip_uint64_t want = std::min<zip_uint64_t>(chunk.size(), e.size + 1 - bytes.size());
        const zip_int64_t got = zip_fread(zf.get(), chunk.data(), want);
        if (got < 0) fmt::fail(who, path, std::string("is corrupt: ") + zip_file_strerror(zf.get()));
        if (got == 0) break;  // the end, with the CRC checked by libzip
        if (bytes.size() + static_cast<std::size_t>(got) > e.size)
            fmt::fail(who, path, "holds more than the " + std::to_string(e.size) +
                                     " bytes the archive declares: the archive is corrupt");
        bytes.append(chunk.data(), static_cast<std::size_t>(got));
    }
    if (bytes.size() < e.size)
        fmt::fail(who, path, "is truncated: the archive declares " + std::to_string(e.size) + " bytes, found " +
                                 std::to_string(bytes.size()));
    return bytes;
}

// The first name that occurs twice in the archive on `fd` (reopened without
// the consistency check, which refuses duplicates unnamed); "" if none is found.
std::string first_duplicate(int fd) {
    int code = 0;
    const int copy = ::dup(fd);  // zip_discard closes what it was given
    if (copy < 0) return "";
    zip_t* za = zip_fdopen(copy, 0, &code);
    if (!za) {
        ::close(copy);
        return "";
    }
    const std::unique_ptr<zip_t, ArchiveCloser> owned(za);
    std::set<std::string> seen;
    const zip_int64_t count = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < count; ++i) {
        const char* name = zip_get_name(za, static_cast<zip_uint64_t>(i), 0);
        if (name && !seen.insert(name).second) return name;
    }
    return "";
}

[[noreturn]] void write_failed(const std::string& path, const std::string& why) {
    throw Error("cannot write '" + path + "': " + why + "; the previous file, if any, is unchanged");
}

// The zip archive of `files` (whole .npy files) named `names`, built in memory:
// every member stored, with the timestamp 1980-01-01 00:00.
std::string zip_bytes(const std::vector<std::string>& names, const std::vector<std::string>& files,
                    const std::string& path) {
    zip_error_t error;
    zip_error_init(&error);
    const auto zip_failed = [&](const std::string& step, zip_error_t* e) {
        const std::string text = zip_error_strerror(e);
        zip_error_fini(&error);
        write_failed(path, "building the zip archive failed (" + step + ": " + text + ")");
    };
    std::unique_ptr<zip_source_t, SourceFree> buffer(zip_source_buffer_create(nullptr, 0, 0, &error));
    if (!buffer) zip_failed("a buffer", &error);
    zip_t* za = zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error);
    if (!za) zip_failed("opening it", &error);
    zip_source_keep(buffer.get());  // the archive holds one reference, this function the other
    std::unique_ptr<zip_t, ArchiveCloser> owned(za);
    constexpr zip_uint16_t kDosTime = 0, kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01 00:00
    for (std::size_t i = 0; i < files.size(); ++i) {
        zip_source_t* src = zip_source_buffer(za, files[i].data(), files[i].size(), 0);
        if (!src) zip_failed("member '" + names[i] + "'", zip_get_error(za));
        const zip_int64_t index = zip_file_add(za, (names[i] + ".npy").c_str(), src, ZIP_FL_ENC_UTF_8);
        if (index < 0) {
            zip_source_free(src);
            zip_failed("member '" + names[i] + "'", zip_get_error(za));
        }
        const auto at = static_cast<zip_uint64_t>(index);
        if (zip_set_file_compression(za, at, ZIP_CM_STORE, 0) != 0 ||
            zip_file_set_dostime(za, at, kDosTime, kDosDate, 0) != 0)
            zip_failed("member '" + names[i] + "'", zip_get_error(za));
    }
    if (zip_close(za) != 0) zip_failed("closing it", zip_get_error(za));
    owned.release();  // closed: zip_close freed it
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_source_stat(buffer.get(), &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        zip_failed("its size", zip_source_error(buffer.get()));
    std::string out(static_cast<std::size_t>(st.size), '\0');
    if (zip_source_open(buffer.get()) != 0) zip_failed("reading it back", zip_source_error(buffer.get()));
    const zip_int64_t got = zip_source_read(buffer.get(), out.data(), st.size);
    zip_source_close(buffer.get());
    if (got < 0 || static_cast<zip_uint64_t>(got) != st.size)
        zip_failed("reading it back", zip_source_error(buffer.get()));
    zip_error_fini(&error);
    return out;
}

}  // namespace

std::vector<Member> read(const std::string& path, const std::string& label) {
    fmt::InputFile file(path, label, ".npz file");
    const std::uintmax_t file_size = file.size();
    int code = 0;
    zip_t* za = zip_fdopen(file.fd(), ZIP_CHECKCONS, &code);
    if (!za) {
        if (code == ZIP_ER_NOZIP)
            fmt::fail(label, path, "not a zip archive, or one cut short (no end-of-archive record); an .npz is "
                                   "the zip file np.savez writes");
        if (code == ZIP_ER_INCONS) fmt::fail(label, path, "the zip archive is corrupt or truncated (" +
                                                              zip_error_text(code) + ")");
        if (code == ZIP_ER_EXISTS) {  // the consistency check found two members of one name
            const std::string name = first_duplicate(file.fd());
            fmt::fail(name.empty() ? label : member_label(name, label), path,
                      "appears twice in the archive (duplicate member names)");
        }
        fmt::fail(label, path, "cannot open it as a zip archive: " + zip_error_text(code));
    }
    file.release();  // libzip closes the descriptor with the archive
    const std::unique_ptr<zip_t, ArchiveCloser> owned(za);

    const zip_int64_t count = zip_get_num_entries(za, 0);
    std::vector<Entry> entries;
    std::set<std::string> seen;
    std::vector<Alloc> allocs;
    for (zip_int64_t i = 0; i < count; ++i) {
        entries.push_back(check_entry(za, static_cast<zip_uint64_t>(i), file_size, seen, path, label));
        // The member's bytes, then its values as doubles (float32 and int32 double in size).
        allocs.push_back(Alloc{"member '" + entries.back().file_name + "'", {entries.back().size}, 3});
    }
    try {
        require_memory("npz", "the arrays in '" + path + "' (their bytes and their values as doubles)", allocs);
    } catch (const Error& e) {
        fmt::fail(label, path, e.what());
    }

    std::vector<Member> members;
    members.reserve(entries.size());
    for (const auto& e : entries) {
        const std::string who = member_label(e.file_name, label);
        const std::string bytes = read_member(za, e, who, path);
        members.push_back(Member{e.name, fmt::parse(bytes, who, path, fmt::Accept{true, true})});
    }
    return members;
}

void write(const std::string& path, const std::vector<Member>& members) {
    fmt::write_atomically(path, {npz::archive(path, members)});
}

std::string archive(const std::string& path, const std::vector<Member>& members) {
    if (members.empty()) write_failed(path, "no arrays to write (an .npz holds at least one)");
    std::set<std::string> names;
    for (const auto& m : members) {
        if (m.name.empty()) write_failed(path, "an array has an empty name");
        if (m.name.find('\0') != std::string::npos) write_failed(path, "an array name contains a NUL character");
        if (m.name.find('/') != std::string::npos)
            write_failed(path, "the array name '" + m.name + "' contains '/' (names are flat: the reader refuses folders)");
        if (!names.insert(m.name).second) write_failed(path, "two arrays are named '" + m.name + "'");
    }
    std::vector<std::string> member_names, files;
    for (const auto& m : members) {
        const std::string who = "cannot write '" + path + "': member '" + m.name + "'";
        for (std::size_t ax = 0; ax < m.tensor.shape.size(); ++ax)
            if (m.tensor.shape[ax] == 0)
                throw Error(who + ": shape " + shape_str(m.tensor.shape) + " has an empty axis " +
                            std::to_string(ax) + ", which the reader refuses");
        member_names.push_back(m.name);
        files.push_back(fmt::serialise(m.tensor, who));
    }
    return zip_bytes(member_names, files, path);
}

}  // namespace idattn::npz
