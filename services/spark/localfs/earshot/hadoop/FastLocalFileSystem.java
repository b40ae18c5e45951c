package earshot.hadoop;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.ChecksumFs;
import org.apache.hadoop.fs.DelegateToFileSystem;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.PathFilter;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system without a process per file.
 *
 * <p>Without Hadoop's native library (which no Python wheel or Maven artifact ships), Hadoop's
 * RawLocalFileSystem sets a new file's permissions by running {@code chmod}, reads a status's
 * permissions with {@code ls} and a path's link with {@code readlink}: a fork of the whole JVM for
 * each small file, 20 to 65 ms each on a 2-core machine. A streaming micro-batch writes several
 * such files (the offset and commit logs, each state store's changelog), and a Delta commit more.
 * This one does the same through java.nio: same files, same renames, no processes.
 *
 * <p>A RocksDB table file ({@code .sst}) copied within the local disk ({@link #copyFromLocalFile},
 * {@link #copyToLocalFile}) becomes a second name of the same file (a hard link) when both names are on
 * one file system. The RocksDB state store copies these files into the checkpoint this way, about 2 GB in
 * a minute's snapshots for a million listeners' tastes, read and written 4 KB at a time with a checksum
 * file beside each, which took a core for seconds in the middle of the stream's batches. RocksDB never
 * writes a table file again once it is written (it deletes it, which leaves the other name), its blocks
 * carry their own checksums, and the store deletes a local file before it loads one of the same name.
 * Every other file is copied as Hadoop copies it, and so is a table file where a link fails (another
 * device, a file system without links).
 *
 * <p>{@code fs.file.impl} = {@code earshot.hadoop.FastLocalFileSystem} (FileSystem API, checksummed
 * like Hadoop's LocalFileSystem), {@code fs.AbstractFileSystem.file.impl} =
 * {@code earshot.hadoop.FastLocalFileSystem$Fs} (the FileContext API, as Hadoop's LocalFs).
 */
public class FastLocalFileSystem extends LocalFileSystem {

  public FastLocalFileSystem() {
    super(new Raw());
  }

  @Override
  public void copyFromLocalFile(boolean delSrc, Path src, Path dst) throws IOException {
    if (delSrc || !link(src, dst)) {
      super.copyFromLocalFile(delSrc, src, dst);
    }
  }

  @Override
  public void copyToLocalFile(boolean delSrc, Path src, Path dst) throws IOException {
    if (delSrc || !link(src, dst)) {
      super.copyToLocalFile(delSrc, src, dst);
    }
  }

  /**
   * A file's checksum file, named as Hadoop names it ({@code .NAME.crc} beside it), for any file name.
   * Hadoop's own builds the name as a path string, and a path string whose first colon comes before any
   * slash is read as a scheme: a file named with a colon ({@code Op. 27: No. 2.flac}, legal on Linux and
   * macOS) failed every read, and one such file failed the whole scan of a music folder.
   */
  @Override
  public Path getChecksumFile(Path file) {
    return new Path(file.getParent(), new Path(null, null, "." + file.getName() + ".crc"));
  }

  /**
   * A pattern whose every glob character is escaped ({@code \\[}) names one path, so it is that path's status
   * (none where it does not exist), found without Hadoop's pattern walk: the walk makes each name it passes
   * into a path string, and reads a name with a colon ({@code Bach: Goldberg Variations}) as a scheme. Music
   * is full of glob characters ({@code Song [Live].flac}, {@code Why?.mp3}); the jobs escape them
   * ({@code connectors/files.py}). A real pattern is Hadoop's to expand.
   */
  @Override
  public FileStatus[] globStatus(Path pathPattern) throws IOException {
    Path literal = unescaped(pathPattern);
    if (literal == null) {
      return super.globStatus(pathPattern);
    }
    try {
      return new FileStatus[] {getFileStatus(literal)};
    } catch (FileNotFoundException e) {
      return null; // as Hadoop answers for a path without a pattern that does not exist
    }
  }

  @Override
  public FileStatus[] globStatus(Path pathPattern, PathFilter filter) throws IOException {
    FileStatus[] found = unescaped(pathPattern) == null ? null : globStatus(pathPattern);
    if (found == null) {
      return super.globStatus(pathPattern, filter);
    }
    return filter.accept(found[0].getPath()) ? found : new FileStatus[0];
  }

  /** The path {@code pattern} names when none of its glob characters is unescaped, else null. */
  static Path unescaped(Path pattern) {
    URI uri = pattern.toUri();
    String escaped = uri.getPath();
    if (escaped == null || escaped.indexOf('\\') < 0) {
      return null;
    }
    StringBuilder plain = new StringBuilder(escaped.length());
    for (int i = 0; i < escaped.length(); i++) {
      char c = escaped.charAt(i);
      if (c == '\\' && i + 1 < escaped.length()) {
        plain.append(escaped.charAt(++i));
      } else if ("{}[]*?".indexOf(c) >= 0) {
        return null; // a real pattern
      } else {
        plain.append(c);
      }
    }
    return new Path(uri.getScheme(), uri.getAuthority(), plain.toString());
  }

  /**
   * Gives the table file {@code src} the second name {@code dst} (replacing a file there, as the copy
   * would, and its checksum file, which would no longer match); false where a copy must do it: another
   * kind of file, a directory on either side, or a file system that cannot link the two.
   */
  private boolean link(Path src, Path dst) throws IOException {
    java.nio.file.Path from = pathToFile(src).toPath();
    java.nio.file.Path to = pathToFile(dst).toPath();
    if (!src.getName().endsWith(".sst")
        || !Files.isRegularFile(from, LinkOption.NOFOLLOW_LINKS)
        || Files.isDirectory(to)) {
      return false;
    }
    if (Files.exists(to, LinkOption.NOFOLLOW_LINKS) && Files.isSameFile(from, to)) {
      return true; // already that file (a copy onto itself would have emptied it)
    }
    java.nio.file.Path parent = to.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    Files.deleteIfExists(pathToFile(getChecksumFile(dst)).toPath());
    try {
      Files.deleteIfExists(to);
      Files.createLink(to, from);
    } catch (FileSystemException | UnsupportedOperationException e) {
      return false; // another device, or links not supported: the copy it falls back to reports real faults
    }
    return true;
  }

  /** RawLocalFileSystem with its permissions and statuses read and set through java.nio. */
  public static class Raw extends RawLocalFileSystem {

    @Override
    public void setPermission(Path p, FsPermission permission) throws IOException {
      Files.setPosixFilePermissions(pathToFile(p).toPath(), toNio(permission));
    }

    @Override
    public FileStatus getFileStatus(Path f) throws IOException {
      return status(f, true);
    }

    /**
     * A folder's entries as Hadoop lists them (a link as what it points to, a dangling link left out), less a
     * link to a folder the listing has already come through: a music folder with a link back into itself
     * ({@code Music/All -> ..}) made a recursive scan walk the loop until the path was too long, and fail.
     */
    @Override
    public FileStatus[] listStatus(Path f) throws IOException {
      FileStatus[] listed = super.listStatus(f);
      java.nio.file.Path dir = pathToFile(f).toPath().toAbsolutePath();
      List<FileStatus> kept = new ArrayList<>(listed.length);
      for (FileStatus entry : listed) {
        if (!entry.isDirectory() || !leadsBack(dir, pathToFile(entry.getPath()).toPath())) {
          kept.add(entry);
        }
      }
      return kept.size() == listed.length ? listed : kept.toArray(new FileStatus[0]);
    }

    /** Whether {@code child}, an entry of {@code dir}, is a link to {@code dir} or to a folder above it. */
    static boolean leadsBack(java.nio.file.Path dir, java.nio.file.Path child) {
      if (!Files.isSymbolicLink(child)) {
        return false;
      }
      try {
        java.nio.file.Path target = child.toRealPath();
        for (java.nio.file.Path up = dir; up != null; up = up.getParent()) {
          if (Files.isSameFile(up, target)) {
            return true;
          }
        }
        return false;
      } catch (IOException e) {
        return true; // a link that cannot be followed is not walked into
      }
    }

    @Override
    public FileStatus getFileLinkStatus(Path f) throws IOException {
      return status(f, false);
    }

    @Override
    public Path getLinkTarget(Path f) throws IOException {
      java.nio.file.Path file = pathToFile(f).toPath();
      if (!Files.isSymbolicLink(file)) {
        throw new IOException("not a symbolic link: " + f);
      }
      return new Path(Files.readSymbolicLink(file).toString());
    }

    private FileStatus status(Path f, boolean follow) throws IOException {
      File file = pathToFile(f);
      LinkOption[] options = follow ? new LinkOption[0] : new LinkOption[] {LinkOption.NOFOLLOW_LINKS};
      PosixFileAttributes a;
      try {
        a = Files.readAttributes(file.toPath(), PosixFileAttributes.class, options);
      } catch (NoSuchFileException e) {
        throw new FileNotFoundException("File " + f + " does not exist");
      }
      Path qualified = f.makeQualified(getUri(), getWorkingDirectory());
      Path target = a.isSymbolicLink() ? new Path(Files.readSymbolicLink(file.toPath()).toString()) : null;
      return new FileStatus(
          a.isDirectory() ? 0 : a.size(),
          a.isDirectory(),
          1,
          getDefaultBlockSize(f),
          a.lastModifiedTime().toMillis(),
          a.lastAccessTime().toMillis(),
          fromNio(a.permissions()),
          a.owner().getName(),
          a.group().getName(),
          target,
          qualified);
    }
  }

  /** The FileContext side: Hadoop's LocalFs (checksummed) over {@link Raw}. */
  public static class Fs extends ChecksumFs {
    public Fs(URI uri, Configuration conf) throws IOException, URISyntaxException {
      super(new RawFs(uri, conf));
    }

    public Fs(Configuration conf) throws IOException, URISyntaxException {
      this(URI.create("file:///"), conf);
    }
  }

  static class RawFs extends DelegateToFileSystem {
    RawFs(URI uri, Configuration conf) throws IOException, URISyntaxException {
      super(URI.create("file:///"), new Raw(), conf, "file", false);
    }

    @Override
    public int getUriDefaultPort() {
      return -1;
    }

    @Override
    public boolean isValidName(String src) {
      return true; // as Hadoop's RawLocalFs: local names need not follow HDFS's rules
    }
  }

  private static final PosixFilePermission[] BITS = {
    PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
    PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
    PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ,
  };

  static Set<PosixFilePermission> toNio(FsPermission permission) {
    short mode = permission.toShort();
    Set<PosixFilePermission> out = EnumSet.noneOf(PosixFilePermission.class);
    for (int i = 0; i < BITS.length; i++) {
      if ((mode & (1 << i)) != 0) {
        out.add(BITS[i]);
      }
    }
    return out;
  }

  static FsPermission fromNio(Set<PosixFilePermission> permissions) {
    short mode = 0;
    for (int i = 0; i < BITS.length; i++) {
      if (permissions.contains(BITS[i])) {
        mode |= (short) (1 << i);
      }
    }
    return new FsPermission(mode);
  }
}
