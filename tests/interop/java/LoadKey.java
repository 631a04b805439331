// Loads a keystore written by certsync the way Tomcat does, recovers the private key
// with the key password, and proves it belongs to the first certificate of the chain.
// Usage: java LoadKey TYPE FILE STOREPASS_FILE KEYPASS_FILE ALIAS
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;

public class LoadKey {
    static char[] password(String file) throws Exception {
        return Files.readAllLines(Paths.get(file), StandardCharsets.UTF_8).get(0).toCharArray();
    }

    public static void main(String[] a) throws Exception {
        KeyStore ks = KeyStore.getInstance(a[0]);
        try (var in = Files.newInputStream(Paths.get(a[1]))) {
            ks.load(in, password(a[2]));
        }
        PrivateKey key = (PrivateKey) ks.getKey(a[4], password(a[3]));
        Certificate[] chain = ks.getCertificateChain(a[4]);
        if (key == null || chain == null) {
            System.out.println("FAIL no PrivateKeyEntry under alias " + a[4]);
            System.exit(1);
        }
        String alg = key.getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA";
        byte[] data = "certsync".getBytes(StandardCharsets.UTF_8);
        Signature s = Signature.getInstance(alg);
        s.initSign(key);
        s.update(data);
        byte[] sig = s.sign();
        Signature v = Signature.getInstance(alg);
        v.initVerify(chain[0].getPublicKey());
        v.update(data);
        if (!v.verify(sig)) {
            System.out.println("FAIL key does not match the certificate");
            System.exit(1);
        }
        for (int i = 0; i + 1 < chain.length; i++)
            chain[i].verify(chain[i + 1].getPublicKey());
        StringBuilder hex = new StringBuilder();
        for (byte b : MessageDigest.getInstance("SHA-256").digest(chain[0].getEncoded()))
            hex.append(String.format("%02x", b));
        System.out.println("OK alias=" + a[4] + " chain=" + chain.length + " key=" + key.getAlgorithm()
                           + " sha256=" + hex);
    }
}
