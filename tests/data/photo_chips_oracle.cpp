// dlib's own face chips, for tests/data/photos_dlib_chips_sha256.txt (tests/faces/test_face_chip.py).
// Build: g++ -O2 -std=c++14 photo_chips_oracle.cpp $(pkg-config --cflags --libs dlib-1) -o chips
//        (Debian libdlib-dev 19.24, libblas-dev, liblapack-dev)
// stdin: lines "photo_path x0 y0 x1 y1 x2 y2 x3 y3 x4 y4" (the oracle's landmarks_5); writes the raw
// 150x150x3 chips to chips.bin and, once per photo, the photo as dlib decoded it to <index>.rgb.
#include <dlib/image_io.h>
#include <dlib/image_processing.h>
#include <dlib/image_transforms.h>
#include <fstream>
#include <iostream>
#include <map>
using namespace dlib;
int main() {
    std::ofstream out("chips.bin", std::ios::binary);
    std::string path;
    std::map<std::string, int> seen;
    while (std::cin >> path) {
        std::vector<point> parts(5);
        for (auto& p : parts) { long x, y; std::cin >> x >> y; p = point(x, y); }
        matrix<rgb_pixel> img; load_image(img, path);
        if (!seen.count(path)) {
            int k = seen.size(); seen[path] = k;
            std::ofstream o(std::to_string(k) + ".rgb", std::ios::binary);
            o.write((const char*)&img(0,0), img.size() * 3);
        }
        full_object_detection det(rectangle(0,0,10,10), parts);
        matrix<rgb_pixel> chip;
        extract_image_chip(img, get_face_chip_details(det, 150, 0.25), chip);
        out.write((const char*)&chip(0,0), chip.size() * 3);
    }
}
