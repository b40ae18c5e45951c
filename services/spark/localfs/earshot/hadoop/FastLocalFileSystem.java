package earshot.hadoop;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.ChecksumFs;
import org.apache.hadoop.fs.DelegateToFileSystem;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
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
 * <p>{@code fs.file.impl} = {@code earshot.hadoop.FastLocalFileSystem} (FileSystem API, checksummed
 * like Hadoop's LocalFileSystem), {@code fs.AbstractFileSystem.file.impl} =
 * {@code earshot.hadoop.FastLocalFileSystem$Fs} (the FileContext API, as Hadoop's LocalFs).
 */
public class FastLocalFileSystem extends LocalFileSystem {

  public FastLocalFileSystem() {
    super(new Raw());
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
