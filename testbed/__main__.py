"""``python -m testbed up|down|status|env|build|image|deploy``."""

from __future__ import annotations

import argparse
import sys

from testbed import builds, cluster, registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="build what is missing, start everything, wait until healthy")
    sub.add_parser("down", help="stop everything the testbed started and remove its state")
    sub.add_parser("status", help="exit 0 only when every part is healthy")
    sub.add_parser("env", help="print KUBECONFIG and S3 settings for eval")
    sub.add_parser("build", help="only build (or find cached) binaries and images")
    sub.add_parser("image", help="build the Dockerfile with buildah and push it to the testbed's registry")
    sub.add_parser("deploy", help="helm install charts/debugcap into debugcap-system from the registry's image")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            cluster.up()
            print("\n".join(cluster.where()))
        elif args.command == "down":
            cluster.down()
        elif args.command == "status":
            health = cluster.status()
            for name, ok in health.items():
                print(f"{name:25} {'healthy' if ok else 'NOT HEALTHY'}")
            return 0 if all(health.values()) else 1
        elif args.command == "env":
            for key, value in cluster.env_vars().items():
                print(f'export {key}="{value}"')
        elif args.command == "build":
            builds.ensure_all()
            from testbed import images

            for ref, path in images.build_all().items():
                print(f"{ref:40} {path}")
        elif args.command in ("image", "deploy"):
            return _image_command(args.command)
    except (cluster.TestbedError, registry.RegistryError) as err:
        print(f"testbed: {err}", file=sys.stderr)
        return 1
    return 0


def _image_command(command: str) -> int:
    from testbed import image_build  # lazily: only these two commands need buildah

    try:
        if command == "image":
            built = image_build.build_operator()
            print(f"{built.ref}@{built.digest}")
            print(f"make image: {built.seconds:.1f}s ({'built' if built.rebuilt else 'up to date, cached'}), "
                  f"image {built.size} uncompressed, {built.pushed_bytes / 1e6:.1f} MB pushed")
        else:
            seconds = image_build.deploy()
            print(f"make deploy: release {image_build.DEPLOY_RELEASE} in {image_build.DEPLOY_NAMESPACE}, "
                  f"operator Ready after {seconds:.1f}s")
    except image_build.BuildError as err:
        print(f"testbed {command}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
